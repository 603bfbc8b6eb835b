"""The child processes of ``test_flood.py``: a lease holder (victim) and an attach flooder.

Each is its own process with its own Aeron client, as a real client would be, so the
flood's back pressure and the victim's keepalives travel through separate Aeron logs.

``python -m tests.interop.flood_client victim AERON_DIR CHANNEL STREAM CLIENT_ID INTERVAL_MS``
attaches as consumer, prints ``{"lease_id": ...}``, then sends a keepalive every INTERVAL_MS
until its stdin is closed; then it detaches (still keeping alive until the answer comes, as a
client does until it is detached) and prints what it saw: every revoke or shutdown naming it,
the detach's answer, and the longest gap between its own keepalives.

``python -m tests.interop.flood_client flood AERON_DIR CHANNEL STREAM FIRST_CLIENT_ID SECONDS``
offers valid consumer attaches with unique client ids as fast as Aeron accepts them for
SECONDS, polling its subscription now and then so it never holds back the driver's
publication; it prints its rate, then keeps polling until its stdin is closed, so its log
stays readable until the test is done with it.

Both assert nothing: the test judges their reports.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import messages
from messages import (
    LeaseRevokeReason,
    ResponseCode,
    Role,
    ShmAttachRequest,
    ShmDetachRequest,
    ShmDetachResponse,
    ShmDriverShutdown,
    ShmLeaseRevoked,
)
from tensorpool_client.aeron_connect import connect
from tests.interop.rawclient import RawClient

STREAM_ID = 10000  # the configuration's static stream "cam"
DETACH_TIMEOUT_S = 10.0  # the detach waits behind whatever the flood left unread
FLOOD_POLL_EVERY = 256  # offers between polls of the flooder's own subscription


def _stdin_closed() -> threading.Event:
    """Set when the parent closes our stdin: the only stop signal, so no signal races."""
    closed = threading.Event()

    def wait() -> None:
        sys.stdin.read()
        closed.set()

    threading.Thread(target=wait, name="stdin-eof", daemon=True).start()
    return closed


def _report(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)  # noqa: T201 - the parent reads this line


class Victim:
    """A consumer that keeps its lease alive on time and records anything that ends it."""

    def __init__(self, client: RawClient, client_id: int, interval_s: float) -> None:
        self.client = client
        self.client_id = client_id
        self.interval_s = interval_s
        self.lease_id = 0
        self.events: list[str] = []
        self.keepalives = 0
        self.max_gap_s = 0.0
        self._last_sent = 0.0
        self._next_due = 0.0
        self._t0 = time.monotonic()

    def _keepalive_if_due(self) -> None:
        now = time.monotonic()
        if now < self._next_due:
            return
        self.client.send(
            messages.ShmLeaseKeepalive(
                lease_id=self.lease_id,
                stream_id=STREAM_ID,
                client_id=self.client_id,
                role=Role.CONSUMER,
                client_timestamp_ns=time.monotonic_ns(),
            )
        )
        sent = time.monotonic()
        if self.keepalives:
            self.max_gap_s = max(self.max_gap_s, sent - self._last_sent)
        self._last_sent = sent
        self.keepalives += 1
        self._next_due = max(self._next_due + self.interval_s, sent + self.interval_s / 2)

    def _scan(self) -> ShmDetachResponse | None:
        """Record revokes/shutdowns that concern us; the detach answer if it has come."""
        answer = None
        for m in self.client.seen:
            at = f"t={time.monotonic() - self._t0:.2f}s"
            if (
                isinstance(m, ShmLeaseRevoked)
                and (m.lease_id == self.lease_id or m.client_id == self.client_id)
                and m.reason != LeaseRevokeReason.DETACHED  # the answer to our own detach
            ):
                self.events.append(f"{at} revoked lease {m.lease_id} ({m.reason.name})")
            elif isinstance(m, ShmDriverShutdown):
                self.events.append(f"{at} driver shutdown ({m.reason.name})")
            elif isinstance(m, ShmDetachResponse) and m.correlation_id == self.client_id:
                answer = m
        self.client.seen.clear()
        return answer

    def run(self, stop: threading.Event) -> dict[str, Any]:
        _, resp = self.client.attach(client_id=self.client_id, role=Role.CONSUMER)
        if resp.code != ResponseCode.OK or resp.lease_id is None:
            return {"attach": resp.code.name, "error": resp.error_message}
        self.lease_id = resp.lease_id
        _report({"lease_id": self.lease_id})
        self.client.seen.clear()
        while not stop.is_set():
            self._keepalive_if_due()
            self.client.pump(min(0.02, max(0.0, self._next_due - time.monotonic())))
            self._scan()
        self.client.send(
            ShmDetachRequest(
                correlation_id=self.client_id,
                lease_id=self.lease_id,
                stream_id=STREAM_ID,
                client_id=self.client_id,
                role=Role.CONSUMER,
            )
        )
        deadline = time.monotonic() + DETACH_TIMEOUT_S
        answer = self._scan()
        while answer is None and time.monotonic() < deadline:
            self._keepalive_if_due()
            self.client.pump(0.02)
            answer = self._scan()
        return {
            "lease_id": self.lease_id,
            "events": self.events,
            "detach": "timeout" if answer is None else answer.code.name,
            "keepalives": self.keepalives,
            "max_gap_ms": round(self.max_gap_s * 1000),
        }


def _victim(aeron_dir: str, channel: str, stream: int, client_id: int, interval_ms: int) -> None:
    stop = _stdin_closed()
    client = RawClient(aeron_dir, channel, stream, stream)
    try:
        _report(Victim(client, client_id, interval_ms / 1000).run(stop))
    finally:
        client.close()


def _noop(_buf: Any, _header: Any) -> None:
    return None


def _flood(aeron_dir: str, channel: str, stream: int, first_client_id: int, seconds: float) -> None:
    stop = _stdin_closed()
    aeron = connect(aeron_dir, client_name="flood")
    try:
        sub = aeron.add_subscription(channel, stream)
        pub = aeron.add_exclusive_publication(channel, stream)
        deadline = time.monotonic() + 10
        while not pub.is_connected and time.monotonic() < deadline:
            time.sleep(0.01)
        sent = refused = 0
        t0 = time.monotonic()
        end = t0 + seconds
        while time.monotonic() < end:
            data = messages.encode(
                ShmAttachRequest(
                    correlation_id=sent + 1,
                    stream_id=STREAM_ID,
                    client_id=first_client_id + sent,
                    role=Role.CONSUMER,
                    expected_layout_version=1,
                )
            )
            if pub.offer(data) is True:
                sent += 1
                if sent % FLOOD_POLL_EVERY == 0:
                    sub.poll(_noop, 1000)
            else:
                refused += 1
                sub.poll(_noop, 1000)
        elapsed = time.monotonic() - t0
        _report({"sent": sent, "per_s": round(sent / elapsed), "refused_offers": refused})
        while not stop.wait(0.005):
            sub.poll(_noop, 1000)
    finally:
        aeron.close()


def main(argv: list[str]) -> int:
    mode, aeron_dir, channel, stream, number, amount = argv
    if mode == "victim":
        _victim(aeron_dir, channel, int(stream), int(number), int(amount))
    elif mode == "flood":
        _flood(aeron_dir, channel, int(stream), int(number), float(amount))
    else:
        msg = f"unknown mode {mode!r}"
        raise SystemExit(msg)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
