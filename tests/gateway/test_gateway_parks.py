"""The gateway's idle parks: short after a reply, 1.5 ms while clients talk, long when silent."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import messages
from actors.gateway.control import (
    COOL_WINDOW_NS,
    DEFAULT_MAX_PARK_NS,
    HEARD_PARK_NS,
    HEARD_WINDOW_NS,
    HOT_PARK_NS,
    ControlGateway,
)
from messages import ResponseCode, Role, ShmDetachResponse, ShmLeaseKeepalive

from .test_gateway_outbound import announce

if TYPE_CHECKING:
    from collections.abc import Callable

    from .conftest import Peer, Recording


def test_parks_follow_replies_and_requests_and_ignore_our_own_echo(
    make_gateway: Callable[..., ControlGateway],
    make_peer: Callable[..., Peer],
    recording: Recording,
) -> None:
    # The announce shares the control stream, so the gateway reads its own announces back.
    gw = make_gateway(shared_announce=True)
    gw.bind(recording.ref)
    peer = make_peer(shared_announce=True)
    now = time.monotonic_ns()
    assert gw._park_ns(now) == DEFAULT_MAX_PARK_NS  # nobody has said anything: idle

    gw.send(announce(1))  # soft state, read back as our own session: still idle
    peer.poll_until(
        lambda: any(isinstance(messages.decode(f), type(announce(1))) for f in peer.control)
    )
    time.sleep(0.05)  # the gateway's polls read it back meanwhile
    assert gw.counters().get("gateway.ignored", 0) >= 1
    assert gw._park_ns(time.monotonic_ns()) == DEFAULT_MAX_PARK_NS

    keepalive = ShmLeaseKeepalive(
        lease_id=1, stream_id=10000, client_id=7, role=Role.CONSUMER, client_timestamp_ns=0
    )
    peer.send(messages.encode(keepalive))  # a client: parks no longer than HEARD_PARK_NS
    recording.wait_for(lambda seen: len(seen) >= 1)
    now = time.monotonic_ns()
    assert gw._park_ns(now) == HEARD_PARK_NS
    assert gw._park_ns(now + HEARD_WINDOW_NS) == DEFAULT_MAX_PARK_NS  # silent for 3 s

    sent = time.monotonic_ns()
    gw.send(ShmDetachResponse(correlation_id=1, code=ResponseCode.OK))  # a reply: answers come
    peer.poll_until(
        lambda: any(isinstance(messages.decode(f), ShmDetachResponse) for f in peer.control)
    )
    replied = gw._replied_ns
    assert replied >= sent
    assert gw._park_ns(replied) == HOT_PARK_NS
    assert gw._park_ns(replied + COOL_WINDOW_NS) == HEARD_PARK_NS
