"""Driver output bytes against the reference clients' acceptance rules (peer_rules)."""

from __future__ import annotations

import struct

import pytest

import messages
from messages import (
    Bool,
    ClockDomain,
    ConsumerConfig,
    LeaseRevokeReason,
    Mode,
    PayloadPool,
    ResponseCode,
    Role,
    ShmAttachResponse,
    ShmDetachResponse,
    ShmDriverShutdown,
    ShmLeaseRevoked,
    ShmPoolAnnounce,
    ShutdownReason,
)
from tests.interop_ref import peer_rules

HEADER_URI = "shm:file?path=/dev/shm/tensorpool-u/default/10000/5/header.ring"
POOL_URI = "shm:file?path=/dev/shm/tensorpool-u/default/10000/5/1.pool"


def _ok(**overrides: object) -> ShmAttachResponse:
    fields: dict[str, object] = {
        "correlation_id": 77, "code": ResponseCode.OK, "lease_id": 9,
        "lease_expiry_timestamp_ns": 3_000_000_000, "stream_id": 10000, "epoch": 5,
        "layout_version": 1, "header_nslots": 64, "header_slot_bytes": 256, "node_id": 1,
        "payload_pools": (PayloadPool(1, 64, 4096, POOL_URI),),
        "header_region_uri": HEADER_URI,
    }
    fields.update(overrides)
    return ShmAttachResponse(**fields)  # type: ignore[arg-type]


def test_ok_attach_response_passes_the_client_checks() -> None:
    assert peer_rules.attach_response_ok(messages.encode(_ok())) == []


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"node_id": None}, "nodeId is null"),
        ({"header_slot_bytes": 128}, "headerSlotBytes 128"),
        ({"payload_pools": ()}, "no payload pools"),
        ({"payload_pools": (PayloadPool(1, 32, 4096, POOL_URI),)}, "pool nslots 32"),
    ],
)
def test_the_rules_catch_what_clients_refuse(override: dict[str, object], complaint: str) -> None:
    problems = peer_rules.attach_response_ok(messages.encode(_ok(**override)))
    assert any(complaint in p for p in problems), problems


@pytest.mark.parametrize(
    ("code", "text"),
    [(ResponseCode.REJECTED, "client_id already attached"),
     (ResponseCode.INVALID_PARAMS, "invalid role"),
     (ResponseCode.UNSUPPORTED, "unsupported publish_mode")],
)
def test_reject_is_all_nulls_with_an_empty_group(code: ResponseCode, text: str) -> None:
    data = messages.encode(ShmAttachResponse(correlation_id=5, code=code, error_message=text))
    problems, error = peer_rules.attach_response_reject(data)
    assert problems == []
    # C auto-client-id retry looks for this substring in the error text.
    assert error == text


@pytest.mark.parametrize(
    ("message", "schema", "template", "block"),
    [
        (ShmDetachResponse(correlation_id=1, code=ResponseCode.OK), 901, 4, 12),
        (ShmDriverShutdown(timestamp_ns=1, reason=ShutdownReason.NORMAL), 901, 6, 9),
        (ShmLeaseRevoked(timestamp_ns=1, lease_id=2, stream_id=10000, client_id=3,
                         role=Role.PRODUCER, reason=LeaseRevokeReason.EXPIRED,
                         error_message="lease expired"), 901, 7, 26),
    ],
)
def test_notices_have_the_exact_block_lengths_c_requires(
    message: messages.SbeMessage, schema: int, template: int, block: int
) -> None:
    assert peer_rules.strict_header(messages.encode(message), schema, template, block) == []


def test_announce_passes_the_consumer_checks() -> None:
    data = messages.encode(ShmPoolAnnounce(
        stream_id=10000, producer_id=0, epoch=5, announce_timestamp_ns=10,
        announce_clock_domain=ClockDomain.MONOTONIC, layout_version=1, header_nslots=64,
        header_slot_bytes=256, payload_pools=(PayloadPool(1, 64, 4096, POOL_URI),),
        header_region_uri=HEADER_URI))
    assert peer_rules.announce(data) == []


@pytest.mark.parametrize(
    "answer",
    [
        {"descriptor_stream_id": 0, "control_stream_id": 0},
        {"descriptor_stream_id": 31000, "descriptor_channel": "aeron:ipc?term-length=4m",
         "control_stream_id": 0},
        {"descriptor_stream_id": 31000, "descriptor_channel": "aeron:ipc?term-length=4m",
         "control_stream_id": 32000, "control_channel": "aeron:ipc?term-length=4m"},
    ],
)
def test_consumer_config_shapes_the_c_consumer_accepts(answer: dict[str, object]) -> None:
    data = messages.encode(ConsumerConfig(
        stream_id=10000, consumer_id=7, use_shm=Bool.TRUE, mode=Mode.STREAM,
        **answer))  # type: ignore[arg-type]
    assert peer_rules.consumer_config(data) == []


def test_keepalive_block_from_a_c_client_decodes() -> None:
    # The C client writes the 25-byte block with every field set; a lease id with the top bit
    # clear (our C-style random seed) must round-trip unchanged.
    body = struct.pack("<QIIBQ", 0x7123456789ABCDEF, 10000, 42, 2, 123)
    data = struct.pack("<HHHH", 25, 5, 901, 1) + body
    msg = messages.decode(data)
    assert isinstance(msg, messages.ShmLeaseKeepalive)
    assert (msg.lease_id, msg.stream_id, msg.client_id, msg.role) == (
        0x7123456789ABCDEF, 10000, 42, Role.CONSUMER)


def test_attach_request_as_the_c_examples_send_it() -> None:
    # Examples: expectedLayoutVersion 0, publishMode EXISTING_OR_CREATE, hugepages
    # UNSPECIFIED, desiredNodeId null; the library default uses layout version 1 instead.
    for layout in (0, 1):
        body = struct.pack("<qIIBIBBI", 99, 10000, 5, 1, layout, 2, 0, 0xFFFFFFFF)
        msg = messages.decode(struct.pack("<HHHH", 27, 1, 901, 1) + body)
        assert isinstance(msg, messages.ShmAttachRequest)
        assert msg.publish_mode == messages.PublishMode.EXISTING_OR_CREATE
        assert msg.desired_node_id is None
        assert msg.expected_layout_version == layout
