"""No control message is dropped for back pressure, however long it lasts (issue 10).

A subscriber of the control stream that stops reading holds every publication on the stream
to one window (half the 1 MiB term) ahead of it. Thousands of attaches are answered and then
expire while it is stalled: the answers and revokes queue in the driver, none is dropped
(the old gateway dropped whatever waited longer than 1 s), and once the subscriber reads
again every one of them arrives, each revoke after its lease's grant.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

import messages
from messages import ResponseCode, Role, ShmAttachRequest, ShmAttachResponse, ShmLeaseRevoked
from tensorpool_client.aeron_connect import connect

from .conftest import CHANNEL, CONTROL_STREAM, KEEPALIVE_MS, status_json

if TYPE_CHECKING:
    from collections.abc import Callable

    from .conftest import DriverProc
    from .rawclient import RawClient

LEASES = 4_000  # ~380 KiB of requests: they fit the window; the answers do not
STALL_S = 2.5  # past the old 1 s drop deadline and the 1 s stall mark


class Stalled:
    """A control-stream subscriber that reads nothing until told to (its own Aeron client)."""

    def __init__(self, aeron_dir: str) -> None:
        self.aeron = connect(aeron_dir, client_name="stalled")
        self.sub = self.aeron.add_subscription(CHANNEL, CONTROL_STREAM)
        self.seen: list[Any] = []

    def _on(self, buf: Any, _header: Any) -> None:
        try:
            self.seen.append(messages.decode(bytes(buf)))
        except messages.DecodeError:
            self.seen.append(None)

    def drain(
        self, until: Callable[[list[Any]], bool], other: RawClient, timeout: float = 60.0
    ) -> None:
        """Read until ``until`` holds; ``other`` (another subscriber) must keep up too."""
        deadline = time.monotonic() + timeout
        while not until(self.seen):
            if time.monotonic() > deadline:
                raise TimeoutError(f"saw {len(self.seen)} messages")
            if not self.sub.poll(self._on, 1000) + other.poll():
                time.sleep(0.001)

    def close(self) -> None:
        self.aeron.close()


@pytest.mark.slow
def test_answers_and_revokes_survive_a_stalled_subscriber(
    driver: DriverProc, client_of: Callable[[DriverProc], RawClient]
) -> None:
    client = client_of(driver)
    client.attach(client_id=1, role=Role.CONSUMER)  # the stream is provisioned, and read
    stalled = Stalled(driver.aeron_dir)
    try:
        base = client.next_id()
        for i in range(LEASES):
            client.send(
                ShmAttachRequest(
                    correlation_id=base + i,
                    stream_id=10000,
                    client_id=10_000 + i,
                    role=Role.CONSUMER,
                    expected_layout_version=0,
                )
            )
        # Granted, never kept alive: every lease expires (TTL 3 x KEEPALIVE_MS) meanwhile.
        time.sleep(max(STALL_S, 3 * KEEPALIVE_MS / 1000 + 1.0))
        counters = status_json(driver.config_path)["counters"]
        assert counters.get("gateway.publish_stalled", 0) >= 1, counters  # it was held back
        assert counters.get("gateway.publish_failed", 0) == 0, counters

        def complete(seen: list[Any]) -> bool:
            return sum(isinstance(m, ShmLeaseRevoked) for m in seen) >= LEASES

        stalled.drain(complete, client)
    finally:
        stalled.close()
    ours = {base + i for i in range(LEASES)}
    granted: dict[int, int] = {}  # lease id -> position of its grant on the wire
    revoked: dict[int, int] = {}
    for at, m in enumerate(stalled.seen):
        if isinstance(m, ShmAttachResponse) and m.correlation_id in ours:
            assert m.code == ResponseCode.OK, m
            assert m.lease_id is not None
            granted[m.lease_id] = at
        elif isinstance(m, ShmLeaseRevoked) and m.lease_id in granted:
            revoked[m.lease_id] = at
    assert len(granted) == LEASES
    assert revoked.keys() == granted.keys()  # every lease's revoke arrived ...
    assert all(granted[lease] < at for lease, at in revoked.items())  # ... after its grant
    counters = status_json(driver.config_path)["counters"]
    assert counters.get("gateway.publish_failed", 0) == 0, counters
    assert counters.get("revoke.EXPIRED", 0) >= LEASES, counters
