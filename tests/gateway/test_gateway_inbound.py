"""Inbound path of the ControlGateway over a real media driver: what reaches the DriverActor."""

from __future__ import annotations

import random
import struct
import time
from typing import TYPE_CHECKING

import pytest

import messages
from actors.gateway.control import ATTACH_REQUEST, HANDLED
from messages import (
    Bool,
    ConsumerHello,
    LeaseRevokeReason,
    Mode,
    PublishMode,
    ResponseCode,
    Role,
    ShmAttachRequest,
    ShmAttachResponse,
    ShmDetachRequest,
    ShmDriverShutdownRequest,
    ShmLeaseKeepalive,
    ShmLeaseRevoked,
    ShutdownReason,
)
from messages.events import (
    COUNTER_DECODE_ERRORS,
    COUNTER_HANDLER_ERRORS,
    COUNTER_IGNORED,
    AttachVersionUnsupported,
    Keepalives,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from actors.gateway.control import ControlGateway
    from tests.gateway.conftest import Peer, Recording

ATTACH = ShmAttachRequest(
    correlation_id=1001,
    stream_id=10000,
    client_id=7,
    role=Role.PRODUCER,
    expected_layout_version=1,
    publish_mode=PublishMode.EXISTING_OR_CREATE,
)

# A driver-to-client message: the gateway ignores it when a peer sends it (not a request).
REVOKED = ShmLeaseRevoked(
    timestamp_ns=1,
    lease_id=2,
    stream_id=3,
    client_id=4,
    role=Role.CONSUMER,
    reason=LeaseRevokeReason.EXPIRED,
)


@pytest.fixture
def unbound_gateway_and_peer(
    make_gateway: Callable[..., ControlGateway], make_peer: Callable[..., Peer]
) -> tuple[ControlGateway, Peer]:
    """A default gateway, bound to nothing yet (requests wait in the log), and a peer."""
    return make_gateway(), make_peer()


@pytest.fixture
def gateway_and_peer(
    unbound_gateway_and_peer: tuple[ControlGateway, Peer], recording: Recording
) -> tuple[ControlGateway, Peer]:
    """A default gateway, already bound to ``recording``, and a default peer."""
    gw, peer = unbound_gateway_and_peer
    gw.bind(recording.ref)
    return gw, peer


def keepalive(lease_id: int) -> ShmLeaseKeepalive:
    return ShmLeaseKeepalive(
        lease_id=lease_id, stream_id=10000, client_id=7, role=Role.PRODUCER, client_timestamp_ns=1
    )


def with_header(data: bytes, **fields: int) -> bytes:
    block, template, schema, version = struct.unpack_from("<HHHH", data)
    values = {"block": block, "template": template, "schema": schema, "version": version}
    values.update(fields)
    header = struct.pack(
        "<HHHH", values["block"], values["template"], values["schema"], values["version"]
    )
    return header + data[8:]


def test_requests_are_decoded_and_told_in_order(
    gateway_and_peer: tuple[ControlGateway, Peer], recording: Recording
) -> None:
    gw, peer = gateway_and_peer
    sent = [
        ATTACH,
        ShmDetachRequest(
            correlation_id=5, lease_id=9, stream_id=10000, client_id=7, role=Role.PRODUCER
        ),
        keepalive(9),
        ShmDriverShutdownRequest(
            correlation_id=6, reason=ShutdownReason.ADMIN, token="t", error_message="bye"
        ),
        ConsumerHello(
            stream_id=10000,
            consumer_id=8,
            supports_shm=Bool.TRUE,
            supports_progress=Bool.FALSE,
            mode=Mode.STREAM,
            max_rate_hz=0,
            expected_layout_version=1,
        ),
    ]
    for message in sent:
        peer.send(messages.encode(message))
    got = recording.wait_for(lambda seen: len(seen) >= len(sent))
    assert got == sent
    assert gw.counters()["gateway.received.ShmAttachRequest"] == 1


def test_own_output_and_responses_of_other_templates_are_ignored(
    make_gateway: Callable[..., ControlGateway],
    make_peer: Callable[..., Peer],
    recording: Recording,
) -> None:
    gw = make_gateway(shared_announce=True)
    gw.bind(recording.ref)
    peer = make_peer(shared_announce=True)
    # The gateway's own publication carries a *request* template: only the session filter
    # can keep it from being told to the driver.
    gw.send(keepalive(1))
    peer.poll_until(lambda: len(peer.control) >= 1)
    not_for_driver = [
        ShmAttachResponse(correlation_id=1, code=ResponseCode.REJECTED, error_message="x"),
        REVOKED,
    ]
    for message in not_for_driver:
        peer.send(messages.encode(message))
    peer.send(with_header(messages.encode(keepalive(2)), schema=777))  # another schema
    peer.send(with_header(messages.encode(keepalive(2)), template=99))  # unknown template
    peer.send(messages.encode(keepalive(3)))  # barrier
    got = recording.wait_for(lambda seen: len(seen) >= 1)
    assert got == [keepalive(3)]
    assert gw.counters()[COUNTER_IGNORED] == 5  # own keepalive + 2 responses + 2 unknown


def test_every_truncation_of_an_attach_is_counted_and_nothing_is_told(
    gateway_and_peer: tuple[ControlGateway, Peer], recording: Recording
) -> None:
    gw, peer = gateway_and_peer
    data = messages.encode(ATTACH)
    for cut in range(1, len(data)):
        peer.send(data[:cut])
    peer.send(messages.encode(keepalive(4)))  # barrier
    got = recording.wait_for(lambda seen: len(seen) >= 1)
    assert got == [keepalive(4)]
    counters = gw.counters()
    errors = {k: v for k, v in counters.items() if k.startswith(COUNTER_DECODE_ERRORS)}
    assert sum(errors.values()) == len(data) - 1
    assert counters[f"{COUNTER_DECODE_ERRORS}.TruncatedMessage"] >= 8


def test_lying_block_length_and_bad_enums_are_counted_by_class(
    gateway_and_peer: tuple[ControlGateway, Peer], recording: Recording
) -> None:
    gw, peer = gateway_and_peer
    data = messages.encode(ATTACH)
    peer.send(with_header(data, block=10))  # shorter than the schema's 27
    peer.send(with_header(data, block=4000))  # longer than the buffer
    revoke = messages.encode(REVOKED)
    hostile_request = bytearray(
        messages.encode(
            ShmDriverShutdownRequest(correlation_id=1, reason=ShutdownReason.ADMIN, token="abc")
        )
    )
    hostile_request[8 + 8] = 77  # ShutdownReason 77 does not exist
    peer.send(bytes(hostile_request))
    peer.send(revoke)
    peer.send(messages.encode(keepalive(5)))
    got = recording.wait_for(lambda seen: len(seen) >= 1)
    assert got == [keepalive(5)]
    counters = gw.counters()
    assert counters[f"{COUNTER_DECODE_ERRORS}.InvalidBlockLength"] == 1
    assert counters[f"{COUNTER_DECODE_ERRORS}.TruncatedMessage"] == 1
    assert counters[f"{COUNTER_DECODE_ERRORS}.InvalidValue"] == 1


def test_newer_attach_version_is_answered_and_other_newer_versions_dropped(
    gateway_and_peer: tuple[ControlGateway, Peer], recording: Recording
) -> None:
    gw, peer = gateway_and_peer
    peer.send(with_header(messages.encode(ATTACH), version=2))
    peer.send(with_header(messages.encode(keepalive(6)), version=3))
    peer.send(messages.encode(keepalive(7)))
    got = recording.wait_for(lambda seen: len(seen) >= 2)
    assert got == [AttachVersionUnsupported(correlation_id=1001), keepalive(7)]
    assert gw.counters()[f"{COUNTER_DECODE_ERRORS}.UnsupportedVersion"] == 2


def test_random_bytes_never_stop_the_loop(
    gateway_and_peer: tuple[ControlGateway, Peer], recording: Recording
) -> None:
    rng = random.Random(1234)
    gw, peer = gateway_and_peer
    for _ in range(300):
        peer.send(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200))))
    peer.send(messages.encode(keepalive(8)))
    got = recording.wait_for(lambda seen: keepalive(8) in seen)
    assert got[-1] == keepalive(8)
    assert gw.running


def test_a_failing_target_is_counted_and_polling_goes_on(
    unbound_gateway_and_peer: tuple[ControlGateway, Peer], recording: Recording
) -> None:
    gw, peer = unbound_gateway_and_peer

    class Broken:
        def tell(self, message: object) -> None:
            raise RuntimeError("actor is gone")

    gw.bind(Broken())
    peer.send(messages.encode(keepalive(9)))
    peer.send(
        messages.encode(
            ShmDetachRequest(
                correlation_id=1, lease_id=9, stream_id=10000, client_id=7, role=Role.PRODUCER
            )
        )
    )
    deadline_counter = f"{COUNTER_HANDLER_ERRORS}"
    peer.poll_until(lambda: gw.counters().get(deadline_counter, 0) >= 2)
    gw.bind(recording.ref)
    peer.send(messages.encode(keepalive(11)))
    assert recording.wait_for(lambda seen: len(seen) >= 1) == [keepalive(11)]


def test_keepalives_read_in_one_poll_are_told_as_one_message_in_request_order(
    unbound_gateway_and_peer: tuple[ControlGateway, Peer], recording: Recording
) -> None:
    gw, peer = unbound_gateway_and_peer
    detach = ShmDetachRequest(
        correlation_id=3, lease_id=2, stream_id=10000, client_id=7, role=Role.PRODUCER
    )
    sent = [keepalive(1), keepalive(2), detach, keepalive(3), keepalive(4), keepalive(5)]
    for message in sent:  # all in the log before the gateway reads any of it
        peer.send(messages.encode(message))
    gw.bind(recording.ref)
    assert recording.wait_for(lambda seen: len(seen) >= len(sent)) == sent
    assert recording.told == [
        Keepalives((keepalive(1), keepalive(2))),  # told before the detach that follows them
        detach,
        Keepalives((keepalive(3), keepalive(4), keepalive(5))),
    ]
    assert gw.counters()["gateway.received.ShmLeaseKeepalive"] == 5


def test_requests_sent_before_bind_wait_for_the_driver(
    make_gateway: Callable[..., ControlGateway],
    make_peer: Callable[..., Peer],
    recording: Recording,
) -> None:
    gw = make_gateway()
    peer = make_peer()
    peer.send(messages.encode(keepalive(12)))
    gw.bind(recording.ref)
    assert recording.wait_for(lambda seen: len(seen) >= 1) == [keepalive(12)]


def test_a_full_driver_mailbox_stops_reading_until_it_drains(
    make_gateway: Callable[..., ControlGateway],
    make_peer: Callable[..., Peer],
    recording: Recording,
) -> None:
    gw = make_gateway(max_backlog=10)
    backlog = [10]  # the driver reports 10 unhandled messages: at the bound
    gw.bind(recording.ref, backlog=lambda: backlog[0])
    peer = make_peer()
    peer.send(messages.encode(keepalive(1)))
    # The gateway keeps turning its loop without reading the request.
    peer.poll_until(lambda: gw.counters().get("gateway.throttled_polls", 0) >= 50)
    assert recording.messages == []
    backlog[0] = 9  # below the bound again: the waiting request is read and told
    assert recording.wait_for(lambda seen: len(seen) >= 1) == [keepalive(1)]


def test_the_intake_horizon_moves_past_what_was_read_and_is_told_only_when_wanted(
    gateway_and_peer: tuple[ControlGateway, Peer], recording: Recording
) -> None:
    gw, peer = gateway_and_peer
    sent_ns: list[int] = []
    for lease_id in range(1, 26):
        peer.send(messages.encode(keepalive(lease_id)))
        sent_ns.append(time.monotonic_ns())  # the offer has completed: it is in the log
    last = sent_ns[-1]
    peer.poll_until(lambda: gw.intake.read_ns > last)
    recording.wait_for(lambda seen: len(seen) == 25)  # told before the horizon moved
    assert recording.intake == []  # nobody asked: no message
    wanted = time.monotonic_ns()
    gw.intake.want(wanted)
    with recording.cond:
        assert recording.cond.wait_for(lambda: len(recording.intake) == 1, 5.0)
        ((ev, told_before),) = recording.intake
    assert ev.now_ns >= wanted
    assert told_before == 25
    assert not gw.intake.wanted


def test_no_intake_horizon_while_a_full_mailbox_holds_reading_back(
    make_gateway: Callable[..., ControlGateway],
    make_peer: Callable[..., Peer],
    recording: Recording,
) -> None:
    gw = make_gateway(max_backlog=10)
    backlog = [10]
    gw.bind(recording.ref, backlog=lambda: backlog[0])
    peer = make_peer()
    peer.send(messages.encode(keepalive(1)))
    held_since = time.monotonic_ns()
    gw.intake.want(held_since)
    peer.poll_until(lambda: gw.counters().get("gateway.throttled_polls", 0) >= 50)
    with recording.cond:
        assert recording.intake == []
    assert gw.intake.read_ns < held_since
    backlog[0] = 0
    with recording.cond:
        assert recording.cond.wait_for(lambda: len(recording.intake) == 1, 5.0)
        assert recording.messages == [keepalive(1)]
        assert recording.intake[0][1] == 1  # the keepalive was told ahead of the horizon


def test_the_gateway_acts_on_the_requests_messages_defines() -> None:
    # sbe.md §7: the ids come from the codecs, never re-declared; these are the spec's values.
    assert {(901, 1), (901, 3), (901, 5), (901, 8), (900, 2)} == HANDLED
    assert ATTACH_REQUEST == (901, 1)
