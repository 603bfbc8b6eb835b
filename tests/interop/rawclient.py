"""A raw Aeron client speaking the spec byte for byte, with no client library in between.

It records every decoded message from the control (and announce) stream in arrival order, so
tests can check the spec's sequences. All Aeron objects are used from the calling thread:
waiting means polling. Run as a script it is the child process of the kill -9 test: it
attaches, prints the lease as one JSON line, then keeps it alive until killed.
"""

from __future__ import annotations

import itertools
import json
import random
import sys
import time
from typing import TYPE_CHECKING, Any

import pyaeron

import messages
from messages import (
    PublishMode,
    Role,
    ShmAttachRequest,
    ShmAttachResponse,
    ShmDetachRequest,
    ShmDetachResponse,
    ShmLeaseKeepalive,
)
from tensorpool_client.aeron_connect import connect

if TYPE_CHECKING:
    from collections.abc import Callable


class RawClient:
    def __init__(
        self, aeron_dir: str, channel: str, control_stream: int, announce_stream: int
    ) -> None:
        self.aeron = connect(aeron_dir, client_name="rawclient")
        self.subs = [self.aeron.add_subscription(channel, control_stream)]
        if announce_stream != control_stream:
            self.subs.append(self.aeron.add_subscription(channel, announce_stream))
        self.pub = self.aeron.add_exclusive_publication(channel, control_stream)
        self.seen: list[Any] = []  # decoded messages, arrival order, own requests excluded
        self.undecodable = 0
        self.idle = pyaeron.IdleStrategy.backoff(max_park_ns=200_000)
        self._ids = itertools.count(random.getrandbits(40) + 1)

    def close(self) -> None:
        self.aeron.close()

    def next_id(self) -> int:
        return next(self._ids)

    def _on_fragment(self, buf: Any, header: Any) -> None:
        if header.session_id == self.pub.session_id:
            return
        try:
            self.seen.append(messages.decode(bytes(buf)))
        except messages.DecodeError:
            self.undecodable += 1

    def poll(self) -> int:
        return sum(int(s.poll(self._on_fragment, 100)) for s in self.subs)

    def send_raw(self, data: bytes, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.pub.offer(data) is not True:
            if time.monotonic() > deadline:
                raise TimeoutError("offer to the control stream timed out")
            self.idle.idle(self.poll())

    def send(self, message: messages.SbeMessage) -> None:
        self.send_raw(messages.encode(message))

    def wait_for(
        self, predicate: Callable[[Any], bool], timeout: float = 10.0, *, start: int = 0
    ) -> tuple[int, Any]:
        """First message at index >= start that matches; polls until it arrives."""
        deadline = time.monotonic() + timeout
        index = start
        while True:
            while index < len(self.seen):
                if predicate(self.seen[index]):
                    return index, self.seen[index]
                index += 1
            if time.monotonic() > deadline:
                raise TimeoutError(f"no matching message within {timeout} s; seen {self.seen!r}")
            self.idle.idle(self.poll())

    def pump(self, seconds: float) -> None:
        """Keep polling for a while (used between keepalives)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.idle.idle(self.poll())

    def attach(
        self,
        *,
        client_id: int,
        role: Role,
        stream_id: int = 10000,
        publish_mode: PublishMode | None = PublishMode.REQUIRE_EXISTING,
        timeout: float = 10.0,
    ) -> tuple[int, ShmAttachResponse]:
        cid = self.next_id()
        start = len(self.seen)
        self.send(
            ShmAttachRequest(
                correlation_id=cid,
                stream_id=stream_id,
                client_id=client_id,
                role=role,
                expected_layout_version=1,
                publish_mode=publish_mode,
            )
        )
        return self.wait_for(
            lambda m: isinstance(m, ShmAttachResponse) and m.correlation_id == cid,
            timeout,
            start=start,
        )

    def keepalive(self, response: ShmAttachResponse, client_id: int, role: Role) -> None:
        assert response.lease_id is not None
        assert response.stream_id is not None
        self.send(
            ShmLeaseKeepalive(
                lease_id=response.lease_id,
                stream_id=response.stream_id,
                client_id=client_id,
                role=role,
                client_timestamp_ns=time.monotonic_ns(),
            )
        )

    def detach(
        self, response: ShmAttachResponse, client_id: int, role: Role, timeout: float = 10.0
    ) -> tuple[int, ShmDetachResponse]:
        assert response.lease_id is not None
        assert response.stream_id is not None
        cid = self.next_id()
        start = len(self.seen)
        self.send(
            ShmDetachRequest(
                correlation_id=cid,
                lease_id=response.lease_id,
                stream_id=response.stream_id,
                client_id=client_id,
                role=role,
            )
        )
        return self.wait_for(
            lambda m: isinstance(m, ShmDetachResponse) and m.correlation_id == cid,
            timeout,
            start=start,
        )


def _child_main(argv: list[str]) -> int:
    aeron_dir, channel, control, announce, client_id, interval_ms = argv
    client = RawClient(aeron_dir, channel, int(control), int(announce))
    _, resp = client.attach(client_id=int(client_id), role=Role.PRODUCER)
    print(  # noqa: T201 - the parent reads this line
        json.dumps(
            {
                "code": int(resp.code),
                "lease_id": resp.lease_id,
                "epoch": resp.epoch,
                "stream_id": resp.stream_id,
            }
        ),
        flush=True,
    )
    while True:  # keep the lease alive until SIGKILL
        client.keepalive(resp, int(client_id), Role.PRODUCER)
        client.pump(int(interval_ms) / 1000)
        client.seen.clear()


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
