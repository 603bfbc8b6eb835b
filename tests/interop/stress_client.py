"""A randomised control-plane client: the child process of ``test_stress.py``.

Run as ``python stress_client.py '<json settings>'``. For ``run_s`` seconds it attaches as
producer or consumer on the given streams (client ids drawn from its own ids and from ids
shared with the other children, so collisions happen on purpose), keeps some leases alive,
detaches some, abandons some (stops their keepalives; some of those get a late detach, racing
their expiry), detaches unknown leases and sends detaches whose ids do not match. Then it
detaches every lease it still keeps alive and waits until everything it was granted is
revoked (abandoned leases expire).

Everything is recorded as JSON lines in ``out``: every request it sent (``send``), every
message it saw on the control stream with the sender's Aeron session id and the stream
position (``recv``), the validation of the region files of each OK response at the moment it
arrived (``validate``), and each decision about a lease (``intent``). The test checks the
protocol invariants on these records; this script asserts nothing.
"""

from __future__ import annotations

import dataclasses
import json
import random
import sys
import time
from enum import IntEnum
from pathlib import Path
from typing import IO, Any

import pyaeron

import messages
from messages import (
    PublishMode,
    ResponseCode,
    Role,
    ShmAttachRequest,
    ShmAttachResponse,
    ShmDetachRequest,
    ShmDetachResponse,
    ShmLeaseKeepalive,
    ShmLeaseRevoked,
)
from shm import RegionValidationError, announced_regions, open_region
from tensorpool_client.aeron_connect import connect

KEEPALIVE_PERIOD_S = 0.1  # half the driver's keepalive interval (200 ms), a sixth of the TTL
DRAIN_TIMEOUT_S = 5.0


def to_json(message: messages.SbeMessage) -> dict[str, Any]:
    """A decoded message as a JSON object: its class name and its fields (enums as ints)."""
    return {"type": type(message).__name__, **dataclasses.asdict(message)}


def _plain(value: object) -> object:
    return int(value) if isinstance(value, IntEnum) else value


def validate_response(resp: ShmAttachResponse, base_dir: Path) -> str | None:
    """Open and validate every region an OK response names; the problem, or None."""
    assert resp.stream_id is not None
    assert resp.epoch is not None
    assert resp.header_nslots is not None
    allowed = (base_dir.resolve(),)
    regions = announced_regions(
        stream_id=resp.stream_id,
        epoch=resp.epoch,
        header_nslots=resp.header_nslots,
        header_uri=resp.header_region_uri,
        pools=resp.payload_pools,
        activity_window_ns=None,
    )
    for uri, expected in regions:
        try:
            open_region(uri, expected, allowed_base_dirs=allowed).close()
        except RegionValidationError as exc:
            return f"{uri}: {exc}"
    return None


@dataclasses.dataclass
class Lease:
    resp: ShmAttachResponse
    client_id: int
    role: Role
    keep: bool = True  # keepalives are sent
    next_keepalive: float = 0.0
    late_detach_at: float | None = None  # an abandoned lease detached later, racing expiry
    detaching: bool = False
    revoked: bool = False

    @property
    def lease_id(self) -> int:
        assert self.resp.lease_id is not None
        return self.resp.lease_id

    @property
    def stream_id(self) -> int:
        assert self.resp.stream_id is not None
        return self.resp.stream_id


class StressClient:
    def __init__(self, settings: dict[str, Any], out: IO[str]) -> None:
        self.s = settings
        self.rng = random.Random(settings["seed"])
        self.out = out
        self.base_dir = Path(settings["base_dir"])
        self.aeron = connect(settings["aeron_dir"], client_name=f"stress{settings['index']}")
        self.sub = self.aeron.add_subscription(settings["channel"], settings["control_stream"])
        self.pub = self.aeron.add_exclusive_publication(
            settings["channel"], settings["control_stream"]
        )
        self.idle = pyaeron.IdleStrategy.backoff(max_park_ns=1_000_000)
        self.next_cid = self.rng.getrandbits(40) + 1
        self.leases: dict[int, Lease] = {}  # every lease granted to this process, by lease id
        self.attaching: dict[int, ShmAttachRequest] = {}
        self.detaching: dict[int, ShmDetachRequest] = {}
        self.inbox: list[messages.SbeMessage] = []

    # ------------------------------------------------------------------ recording

    def record(self, kind: str, t: int | None = None, **fields: object) -> None:
        """One JSON line; ``t`` is CLOCK_MONOTONIC ns (now unless given)."""
        stamp = time.monotonic_ns() if t is None else t
        line = {"k": kind, "t": stamp, **{k: _plain(v) for k, v in fields.items()}}
        self.out.write(json.dumps(line) + "\n")

    # ------------------------------------------------------------------ Aeron

    def _on_fragment(self, buf: Any, header: Any) -> None:
        if header.session_id == self.pub.session_id:
            return
        data = bytes(buf)
        try:
            message = messages.decode(data)
        except messages.DecodeError as exc:
            self.record("undecodable", session=header.session_id, pos=header.position,
                        error=str(exc), size=len(data))
            return
        self.record("recv", session=header.session_id, pos=header.position, msg=to_json(message))
        self.inbox.append(message)

    def poll(self) -> int:
        count = int(self.sub.poll(self._on_fragment, 100))
        inbox, self.inbox = self.inbox, []
        for message in inbox:
            self.handle(message)
        return count

    def send(self, message: messages.SbeMessage, **note: object) -> None:
        """Offer ``message``; its record's ``t`` is taken *before* the offer, a lower bound of
        when the driver can have seen it (the checks rely on that direction)."""
        data = messages.encode(message)
        t = time.monotonic_ns()
        deadline = time.monotonic() + 5.0
        while self.pub.offer(data) is not True:
            if time.monotonic() > deadline:
                raise TimeoutError("offer to the control stream timed out")
            self.idle.idle(self.poll())
        self.record("send", t, msg=to_json(message), **note)

    def wait_connected(self) -> None:
        deadline = time.monotonic() + 10.0
        while not (self.sub.is_connected and self.pub.is_connected):
            if time.monotonic() > deadline:
                raise TimeoutError("control stream not connected")
            time.sleep(0.005)

    def cid(self) -> int:
        self.next_cid += 1
        return self.next_cid

    # ------------------------------------------------------------------ reactions

    def handle(self, message: messages.SbeMessage) -> None:
        if isinstance(message, ShmAttachResponse):
            request = self.attaching.pop(message.correlation_id, None)
            if request is not None and message.code == ResponseCode.OK:
                self.granted(request, message)
        elif isinstance(message, ShmDetachResponse):
            self.detaching.pop(message.correlation_id, None)
        elif isinstance(message, ShmLeaseRevoked):
            lease = self.leases.get(message.lease_id)
            if lease is not None:
                lease.revoked = True
                lease.keep = False

    def granted(self, request: ShmAttachRequest, resp: ShmAttachResponse) -> None:
        problem = validate_response(resp, self.base_dir)
        self.record("validate", lease_id=resp.lease_id, problem=problem)
        lease = Lease(resp=resp, client_id=request.client_id, role=Role(request.role))
        lease.next_keepalive = time.monotonic() + KEEPALIVE_PERIOD_S
        self.leases[lease.lease_id] = lease
        if self.draining:
            self.detach(lease)

    # ------------------------------------------------------------------ actions

    def attach(self) -> None:
        s = self.s
        modes: list[PublishMode | None] = [
            None, PublishMode.REQUIRE_EXISTING, PublishMode.EXISTING_OR_CREATE
        ]
        choices: list[tuple[int, PublishMode | None]] = [
            (sid, m) for sid in s["static_streams"] for m in modes
        ]
        choices += [(sid, PublishMode.EXISTING_OR_CREATE) for sid in s["dynamic_streams"]] * 2
        stream_id, mode = self.rng.choice(choices)
        if self.rng.random() < s["p_stream_zero"]:
            stream_id, mode = 0, PublishMode.EXISTING_OR_CREATE
        request = ShmAttachRequest(
            correlation_id=self.cid(),
            stream_id=stream_id,
            client_id=self.rng.choice(s["own_client_ids"] + s["shared_client_ids"]),
            role=Role.PRODUCER if self.rng.random() < 0.4 else Role.CONSUMER,
            expected_layout_version=self.rng.choice([0, 1]),
            publish_mode=mode,
        )
        self.attaching[request.correlation_id] = request
        self.send(request)

    def detach(self, lease: Lease, *, why: str = "detach") -> None:
        lease.keep = False
        lease.detaching = True
        lease.late_detach_at = None
        request = ShmDetachRequest(
            correlation_id=self.cid(),
            lease_id=lease.lease_id,
            stream_id=lease.stream_id,
            client_id=lease.client_id,
            role=lease.role,
        )
        self.detaching[request.correlation_id] = request
        self.send(request, why=why)

    def bogus_detach(self) -> None:
        """A detach the driver must refuse: an unknown id, ids that do not match, a repeat."""
        live = [ls for ls in self.leases.values() if not ls.revoked and not ls.detaching]
        ended = [ls for ls in self.leases.values() if ls.revoked]
        choice = self.rng.random()
        if live and choice < 0.4:
            lease = self.rng.choice(live)
            other = Role.CONSUMER if lease.role == Role.PRODUCER else Role.PRODUCER
            ids = (lease.lease_id, lease.stream_id, lease.client_id, other)
            why = "mismatch"
        elif ended and choice < 0.7:
            lease = self.rng.choice(ended)
            ids = (lease.lease_id, lease.stream_id, lease.client_id, lease.role)
            why = "repeat"
        else:
            ids = (self.rng.getrandbits(62) + 1, 10000, 424242, Role.CONSUMER)
            why = "unknown"
        request = ShmDetachRequest(
            correlation_id=self.cid(), lease_id=ids[0], stream_id=ids[1], client_id=ids[2],
            role=ids[3],
        )
        self.detaching[request.correlation_id] = request
        self.send(request, why=why)

    def act(self) -> None:
        live = [ls for ls in self.leases.values() if ls.keep]
        roll = self.rng.random()
        if roll < 0.45 or not live:
            if self.rng.random() < 0.9:
                self.attach()
            else:
                self.bogus_detach()
        elif roll < 0.70:
            self.detach(self.rng.choice(live))
        elif roll < 0.85:
            lease = self.rng.choice(live)
            lease.keep = False
            if self.rng.random() < 0.35:
                ttl = self.s["ttl_ms"] / 1000
                lease.late_detach_at = time.monotonic() + self.rng.uniform(0.5, 1.5) * ttl
            self.record("intent", lease_id=lease.lease_id, what="abandon",
                        late_detach_at=lease.late_detach_at)
        else:
            self.bogus_detach()

    def keepalives(self, now: float) -> None:
        for lease in self.leases.values():
            if lease.keep and now >= lease.next_keepalive:
                lease.next_keepalive = now + KEEPALIVE_PERIOD_S
                self.send(
                    ShmLeaseKeepalive(
                        lease_id=lease.lease_id,
                        stream_id=lease.stream_id,
                        client_id=lease.client_id,
                        role=lease.role,
                        client_timestamp_ns=time.monotonic_ns(),
                    )
                )
            elif lease.late_detach_at is not None and now >= lease.late_detach_at:
                self.detach(lease, why="late")

    # ------------------------------------------------------------------ main loop

    draining = False

    def run(self) -> None:
        self.wait_connected()
        self.record("start", settings=self.s)
        start = time.monotonic()
        run_end = start + self.s["run_s"]
        drain_end = run_end + DRAIN_TIMEOUT_S
        next_action = start
        settled = False
        while True:
            work = self.poll()
            now = time.monotonic()
            if not self.draining and now >= run_end:
                self.draining = True
                self.record("drain")
                for lease in list(self.leases.values()):
                    if lease.keep:
                        self.detach(lease, why="drain")
                    lease.late_detach_at = None
            if self.draining:
                settled = not self.attaching and not self.detaching and all(
                    ls.revoked for ls in self.leases.values()
                )
                if settled or now >= drain_end:
                    break
            elif now >= next_action:
                self.act()
                next_action = now + self.rng.uniform(0.02, self.s["max_action_gap_s"])
            self.keepalives(now)
            self.idle.idle(work)
        self.record("end", settled=settled)

    def close(self) -> None:
        self.aeron.close()


def main(argv: list[str]) -> int:
    settings = json.loads(argv[0])
    with Path(settings["out"]).open("w", encoding="utf-8") as out:
        client = StressClient(settings, out)
        try:
            client.run()
        finally:
            client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
