"""Bounded multi-process stress of a running driver, judged by protocol invariants.

One driver process (the interop configuration: keepalive interval 200 ms, TTL 600 ms, plus two
more static streams) and four client processes (``stress_client.py``, each with its own Aeron
client) that for a few seconds attach at random as producer or consumer on three static
streams, one fixed dynamic stream and the occasional "any dynamic stream" (id 0), with client
ids that collide on purpose (inside one process and across processes); they keep some leases
alive, detach some, abandon some (some of those get a late detach that races their expiry)
and send detaches the driver must refuse. Then every client detaches what it still keeps and
waits until everything it was granted is revoked.

The verdict comes from the recordings alone, not from timing: the control stream is one
exclusive driver publication, so every message the driver sent has a position in one total
order (the *wire*). An observer in this process records the whole wire; every client records
what it sent and the part of the wire it saw, and must agree with the observer. The protocol
invariants are then checked on that order (see ``Checker``), and on the driver's final
``status --json``.

Where a request's effect and its response are separated in time, the check allows exactly the
ambiguity the protocol has: an attach takes effect at some instant between being sent and its
response appearing on the wire. So a ``client_id already attached`` / ``producer already
attached`` answer is justified by a lease that is active on the wire, or by a lease whose
attach had been sent before the rejection appeared (an attach in progress, answered later).
Conversely a grant while another lease of the same client id (or another producer of the same
stream) has not been revoked on the wire is never justified: the revoke of a lease that ended
before an attach was handled must precede that attach's answer.

Set ``TP_STRESS_SEED`` to replay a seed (printed on failure; the schedule still depends on
timing, the verdict does not).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyaeron
import pytest

import messages
from messages import LeaseRevokeReason, ResponseCode, Role
from tensorpool_client.aeron_connect import connect

from .conftest import CHANNEL, CONTROL_STREAM, KEEPALIVE_MS, REPO, child_env, status_json
from .stress_client import to_json

if TYPE_CHECKING:
    from .conftest import DriverFactory

pytestmark = pytest.mark.slow

CLIENTS = 4
RUN_S = 7.0
STATIC_STREAMS = (10000, 10001, 10002)
DYNAMIC_STREAMS = (20042,)
DYNAMIC_RANGE = range(20000, 20100)
SHARED_CLIENT_IDS = (900001, 900002)
TTL_NS = KEEPALIVE_MS * 3 * 1_000_000  # lease_expiry_grace_intervals = 3 in the config
POOLS = [(1, 64, 1024), (2, 64, 4096)]
NSLOTS = 64
EXTRA_STREAMS = """
[streams.cam2]
stream_id = 10001
profile = "small"

[streams.cam3]
stream_id = 10002
profile = "small"
"""
DRIVER_TYPES = frozenset(
    {
        "ShmAttachResponse",
        "ShmDetachResponse",
        "ShmLeaseRevoked",
        "ShmPoolAnnounce",
        "ShmDriverShutdown",
        "ConsumerConfig",
    }
)
TEXT_CLIENT_ATTACHED = "client_id already attached"
TEXT_PRODUCER_ATTACHED = "producer already attached"
REVOKE_TEXT = {int(LeaseRevokeReason.DETACHED): "lease detached",
               int(LeaseRevokeReason.EXPIRED): "lease expired"}
U32_NULL = 0xFFFFFFFF

type Rec = dict[str, Any]


# ---------------------------------------------------------------------- the observer


class Observer:
    """Records every message on the control stream, with session id and position."""

    def __init__(self, aeron_dir: str) -> None:
        self.aeron = connect(aeron_dir, client_name="stress-observer")
        self.sub = self.aeron.add_subscription(CHANNEL, CONTROL_STREAM)
        self.idle = pyaeron.IdleStrategy.backoff(max_park_ns=1_000_000)
        self.records: list[Rec] = []

    def _on_fragment(self, buf: Any, header: Any) -> None:
        data = bytes(buf)
        rec: Rec = {"k": "recv", "t": time.monotonic_ns(), "session": header.session_id,
                    "pos": header.position}
        try:
            rec["msg"] = json.loads(json.dumps(to_json(messages.decode(data))))  # as children
        except messages.DecodeError as exc:
            rec["k"], rec["error"] = "undecodable", str(exc)
        self.records.append(rec)

    def pump(self) -> None:
        self.idle.idle(int(self.sub.poll(self._on_fragment, 100)))

    def pump_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.pump()

    def close(self) -> None:
        self.aeron.close()


# ---------------------------------------------------------------------- the checker


@dataclass
class Wire:
    index: int
    pos: int
    t: int  # observer's CLOCK_MONOTONIC at receipt (>= the driver's send time)
    msg: Rec

    @property
    def type(self) -> str:
        return str(self.msg["type"])


@dataclass
class Request:
    owner: int
    t: int  # CLOCK_MONOTONIC just before the offer (<= the real send time)
    msg: Rec
    why: str = ""


@dataclass
class Lease:
    lease_id: int
    ok: Wire
    request: Request
    revokes: list[Wire] = field(default_factory=list)
    detaches: list[Request] = field(default_factory=list)  # detaches with all four ids right
    keepalives: list[int] = field(default_factory=list)  # send times
    abandoned: bool = False

    @property
    def stream_id(self) -> int:
        return int(self.ok.msg["stream_id"])

    @property
    def client_id(self) -> int:
        return int(self.request.msg["client_id"])

    @property
    def role(self) -> int:
        return int(self.request.msg["role"])

    @property
    def epoch(self) -> int:
        return int(self.ok.msg["epoch"])

    def describe(self) -> str:
        return (f"lease {self.lease_id} (client {self.client_id}, "
                f"{Role(self.role).name}, stream {self.stream_id}, granted at wire "
                f"#{self.ok.index})")


@dataclass
class _Holders:
    """Who holds what on the wire, while walking it."""

    by_client: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    producer: dict[int, int] = field(default_factory=dict)  # stream id -> lease id
    leases_of_client: dict[int, list[Lease]] = field(default_factory=lambda: defaultdict(list))
    producers_of_stream: dict[int, list[Lease]] = field(
        default_factory=lambda: defaultdict(list)
    )


def _in_progress(candidates: list[Lease], w: Wire) -> bool:
    """An attach sent before ``w`` was observed and answered OK after it: it may have taken
    effect (the driver handled it) before ``w`` was sent, its answer coming later."""
    return any(c.ok.index > w.index and c.request.t < w.t for c in candidates)


class Checker:
    """Protocol invariants over the wire and the clients' records; collects violations."""

    def __init__(self, observer: list[Rec], clients: list[list[Rec]]) -> None:
        self.violations: list[str] = []
        self.clients = clients
        self.wire = self._wire(observer)
        self.attaches: dict[int, Request] = {}
        self.detaches: dict[int, Request] = {}
        self.validations: dict[int, Rec] = {}
        self._requests()
        self.leases: dict[int, Lease] = {}
        self.attach_responses: dict[int, list[Wire]] = defaultdict(list)
        self.detach_responses: dict[int, list[Wire]] = defaultdict(list)

    def fail(self, text: str) -> None:
        self.violations.append(text)

    # .................................................................. inputs

    def _wire(self, observer: list[Rec]) -> list[Wire]:
        undecodable = [r for r in observer if r["k"] == "undecodable"]
        if undecodable:
            self.fail(f"observer could not decode {len(undecodable)} messages: {undecodable[:3]}")
        driver_sessions = {r["session"] for r in observer
                           if r["k"] == "recv" and r["msg"]["type"] in DRIVER_TYPES}
        if len(driver_sessions) != 1:
            self.fail(f"driver messages came from sessions {driver_sessions}, expected one")
        wire = [
            Wire(0, r["pos"], r["t"], r["msg"])
            for r in observer
            if r["k"] == "recv" and r["session"] in driver_sessions
        ]
        for n, w in enumerate(wire):
            w.index = n
        if any(a.pos >= b.pos for a, b in itertools.pairwise(wire)):
            self.fail("observer saw driver positions out of order")
        return wire

    def _requests(self) -> None:
        for owner, records in enumerate(self.clients):
            for r in records:
                if r["k"] == "send":
                    msg = r["msg"]
                    request = Request(owner, r["t"], msg, r.get("why", ""))
                    table = {"ShmAttachRequest": self.attaches,
                             "ShmDetachRequest": self.detaches}.get(msg["type"])
                    if table is None:
                        continue
                    if msg["correlation_id"] in table:
                        self.fail(f"correlation id {msg['correlation_id']} used twice")
                    table[msg["correlation_id"]] = request
                elif r["k"] == "validate":
                    self.validations[r["lease_id"]] = r

    # .................................................................. checks

    def run(self) -> list[str]:
        self.check_clients_agree_with_the_wire()
        self.collect_responses_and_leases()
        self.check_attach_responses()
        self.check_ownership_in_wire_order()
        self.check_revokes()
        self.check_detaches()
        self.check_epochs()
        return self.violations

    def check_clients_agree_with_the_wire(self) -> None:
        """Every client saw a gap-free stretch of the same driver output, in the same order."""
        by_pos = {w.pos: w for w in self.wire}
        for owner, records in enumerate(self.clients):
            seen = [r for r in records if r["k"] == "recv" and r["msg"]["type"] in DRIVER_TYPES]
            if [r for r in records if r["k"] == "undecodable"]:
                self.fail(f"client {owner} could not decode some messages")
            if not seen:
                self.fail(f"client {owner} saw no driver message")
                continue
            indices = []
            for r in seen:
                w = by_pos.get(r["pos"])
                if w is None or w.msg != r["msg"]:
                    self.fail(f"client {owner} saw {r['msg']['type']} at position {r['pos']} "
                              "that the observer did not see there")
                    return
                indices.append(w.index)
            if indices != list(range(indices[0], indices[0] + len(indices))):
                self.fail(f"client {owner} missed or reordered driver messages")
            ends = [r for r in records if r["k"] == "end"]
            if not ends or not ends[0]["settled"]:
                self.fail(f"client {owner} did not settle: a request went unanswered or a lease "
                          "it was granted was not revoked within its drain timeout")

    def collect_responses_and_leases(self) -> None:
        self._index_responses()
        self._count_responses()
        self._attach_client_records()

    def _index_responses(self) -> None:
        for w in self.wire:
            if w.type == "ShmAttachResponse":
                self.attach_responses[w.msg["correlation_id"]].append(w)
            elif w.type == "ShmDetachResponse":
                self.detach_responses[w.msg["correlation_id"]].append(w)
        for cid, responses in self.attach_responses.items():
            request = self.attaches.get(cid)
            if request is None:
                self.fail(f"attach response #{responses[0].index} for unknown correlation {cid}")
                continue
            for w in responses:
                if w.msg["code"] != ResponseCode.OK:
                    continue
                lease_id = w.msg["lease_id"]
                if lease_id in self.leases:
                    self.fail(f"lease id {lease_id} granted twice (#{w.index})")
                    continue
                self.leases[lease_id] = Lease(lease_id, w, request)

    def _count_responses(self) -> None:
        for cid, request in self.attaches.items():
            got = len(self.attach_responses.get(cid, []))
            if got != 1:
                self.fail(f"attach {cid} of client {request.owner} got {got} responses")
        for cid, request in self.detaches.items():
            got = len(self.detach_responses.get(cid, []))
            if got != 1:
                self.fail(f"detach {cid} ({request.why}) of client {request.owner} got {got} "
                          "responses")

    def _attach_client_records(self) -> None:
        """Keepalives, decisions and detaches of each lease's owner."""
        for owner, records in enumerate(self.clients):
            for r in records:
                if r["k"] == "send" and r["msg"]["type"] == "ShmLeaseKeepalive":
                    lease = self.leases.get(r["msg"]["lease_id"])
                    if lease is not None and lease.request.owner == owner:
                        lease.keepalives.append(r["t"])
                elif r["k"] == "intent" and r["what"] == "abandon":
                    lease = self.leases.get(r["lease_id"])
                    if lease is not None:
                        lease.abandoned = True
        for request in self.detaches.values():
            m = request.msg
            lease = self.leases.get(m["lease_id"])
            if lease is not None and (lease.stream_id, lease.client_id, lease.role) == (
                m["stream_id"], m["client_id"], m["role"]
            ):
                lease.detaches.append(request)

    def check_attach_responses(self) -> None:
        for cid, responses in self.attach_responses.items():
            request = self.attaches.get(cid)
            if request is None:
                continue
            for w in responses:
                if w.msg["code"] == ResponseCode.OK:
                    self._check_ok(request, w)
                else:
                    self._check_rejection(request, w)

    def _check_ok(self, request: Request, w: Wire) -> None:
        m, req = w.msg, request.msg
        where = f"OK attach response #{w.index} (client {req['client_id']})"
        nullable = ("lease_id", "lease_expiry_timestamp_ns", "stream_id", "epoch",
                    "layout_version", "header_nslots", "header_slot_bytes", "node_id")
        if any(m[f] is None for f in nullable):
            self.fail(f"{where} has null fields: {[f for f in nullable if m[f] is None]}")
            return
        pools = [(p["pool_id"], p["pool_nslots"], p["stride_bytes"]) for p in m["payload_pools"]]
        problems = [
            text
            for bad, text in (
                (m["lease_id"] == 0, "lease id 0"),
                (m["epoch"] == 0, "epoch 0"),
                (m["layout_version"] != 1, "layout version"),
                (m["header_nslots"] != NSLOTS, "headerNslots"),
                (m["header_slot_bytes"] != 256, "headerSlotBytes"),
                (m["node_id"] in (0, U32_NULL), "node id"),
                (pools != POOLS, f"pools {pools} (poolNslots must equal headerNslots)"),
                (m["error_message"] != "", "error message"),
                (
                    (req["stream_id"] != 0 and m["stream_id"] != req["stream_id"])
                    or (req["stream_id"] == 0 and m["stream_id"] not in DYNAMIC_RANGE),
                    f"stream id {m['stream_id']} for a request of {req['stream_id']}",
                ),
                (
                    m["lease_expiry_timestamp_ns"] < request.t + TTL_NS,
                    "lease expiry earlier than the request + TTL",
                ),
                (
                    not all(
                        f"/{m['stream_id']}/{m['epoch']}/" in uri and uri.startswith("shm:file?")
                        for uri in [m["header_region_uri"]]
                        + [p["region_uri"] for p in m["payload_pools"]]
                    ),
                    "URIs not of this stream's epoch directory",
                ),
            )
            if bad
        ]
        if problems:
            self.fail(f"{where}: {problems}")
        validation = self.validations.get(m["lease_id"])
        if validation is None:
            self.fail(f"{where}: its client never validated the regions")
        elif validation["problem"] is not None:
            replaced = [
                a for a in self.wire
                if a.type == "ShmPoolAnnounce" and a.msg["stream_id"] == m["stream_id"]
                and a.msg["epoch"] > m["epoch"]
                and a.msg["announce_timestamp_ns"] < validation["t"]
            ]
            if not replaced:
                self.fail(f"{where}: regions invalid while the epoch was current: "
                          f"{validation['problem']}")

    def _check_rejection(self, request: Request, w: Wire) -> None:
        m = w.msg
        where = f"attach response #{w.index} (client {request.msg['client_id']})"
        allowed = {(int(ResponseCode.REJECTED), TEXT_CLIENT_ATTACHED),
                   (int(ResponseCode.REJECTED), TEXT_PRODUCER_ATTACHED)}
        if (m["code"], m["error_message"]) not in allowed:
            self.fail(f"{where}: unexpected {ResponseCode(m['code']).name} "
                      f"{m['error_message']!r}")
        optional = ("lease_id", "lease_expiry_timestamp_ns", "stream_id", "epoch",
                    "layout_version", "header_nslots", "header_slot_bytes", "node_id")
        if any(m[f] is not None for f in optional) or m["payload_pools"] or m[
            "header_region_uri"
        ]:
            self.fail(f"{where}: a rejection with non-null fields")

    def check_ownership_in_wire_order(self) -> None:
        """One lease per client id and one producer per stream, as seen on the wire."""
        state = _Holders()
        for granted in self.leases.values():
            state.leases_of_client[granted.client_id].append(granted)
            if granted.role == Role.PRODUCER:
                state.producers_of_stream[granted.stream_id].append(granted)
        for w in self.wire:
            if w.type == "ShmLeaseRevoked":
                lease = self.leases.get(w.msg["lease_id"])
                if lease is not None:
                    state.by_client[lease.client_id].discard(lease.lease_id)
                    if state.producer.get(lease.stream_id) == lease.lease_id:
                        del state.producer[lease.stream_id]
            elif w.type == "ShmPoolAnnounce":
                holder = state.producer.get(w.msg["stream_id"])
                expected = 0 if holder is None else self.leases[holder].client_id
                if w.msg["producer_id"] != expected:
                    self.fail(f"announce #{w.index} of stream {w.msg['stream_id']} names producer "
                              f"{w.msg['producer_id']}, the wire says {expected}")
            elif w.type == "ShmAttachResponse":
                request = self.attaches.get(w.msg["correlation_id"])
                if request is not None:
                    self._check_attach_against_holders(request, w, state)

    def _check_attach_against_holders(self, request: Request, w: Wire, state: _Holders) -> None:
        client_id = request.msg["client_id"]
        held = sorted(state.by_client[client_id])
        text = w.msg["error_message"]
        if w.msg["code"] == ResponseCode.OK:
            lease = self.leases[w.msg["lease_id"]]
            if held:
                self.fail(f"{lease.describe()} granted while the same client id holds "
                          f"{[self.leases[h].describe() for h in held]} on the wire "
                          "(not revoked yet)")
            state.by_client[client_id].add(lease.lease_id)
            if lease.role == Role.PRODUCER:
                holder = state.producer.get(lease.stream_id)
                if holder is not None:
                    self.fail(f"producer {lease.describe()} granted while "
                              f"{self.leases[holder].describe()} is not revoked yet")
                state.producer[lease.stream_id] = lease.lease_id
        elif text == TEXT_CLIENT_ATTACHED:
            if not held and not _in_progress(state.leases_of_client[client_id], w):
                self.fail(f"attach response #{w.index}: '{text}' for client {client_id} "
                          "that holds no lease and has no attach in progress")
        elif held:
            self.fail(f"attach response #{w.index} for client {client_id} says {text!r} "
                      f"but the client id holds {held}: must be '{TEXT_CLIENT_ATTACHED}'")
        elif text == TEXT_PRODUCER_ATTACHED:
            stream_id = request.msg["stream_id"]
            if stream_id not in state.producer and not _in_progress(
                state.producers_of_stream[stream_id], w
            ):
                self.fail(f"attach response #{w.index}: '{text}' for stream {stream_id} "
                          "that has no producer and none in progress")

    def check_revokes(self) -> None:
        for w in self.wire:
            if w.type != "ShmLeaseRevoked":
                continue
            lease = self.leases.get(w.msg["lease_id"])
            if lease is None or lease.ok.index > w.index:
                self.fail(f"revoke #{w.index} of lease {w.msg['lease_id']} not granted before")
                continue
            lease.revokes.append(w)
            ids = (w.msg["stream_id"], w.msg["client_id"], w.msg["role"])
            if ids != (lease.stream_id, lease.client_id, lease.role):
                self.fail(f"revoke #{w.index} carries {ids} for {lease.describe()}")
            if w.msg["error_message"] not in ("", REVOKE_TEXT.get(w.msg["reason"], "?")):
                self.fail(f"revoke #{w.index} text {w.msg['error_message']!r}")
        for lease in self.leases.values():
            if len(lease.revokes) != 1:
                self.fail(f"{lease.describe()} revoked {len(lease.revokes)} times")
                continue
            revoke = lease.revokes[0]
            reason = revoke.msg["reason"]
            if reason == LeaseRevokeReason.EXPIRED:
                self._check_expiry(lease, revoke)
            elif reason == LeaseRevokeReason.DETACHED:
                answered = [
                    d for d in lease.detaches
                    if any(r.msg["code"] == ResponseCode.OK
                           for r in self.detach_responses.get(d.msg["correlation_id"], []))
                ]
                if len(answered) != 1:
                    self.fail(f"{lease.describe()} revoked DETACHED with {len(answered)} detaches "
                              "answered OK")
            else:
                self.fail(f"{lease.describe()} revoked with reason {reason}")

    def _check_expiry(self, lease: Lease, revoke: Wire) -> None:
        """Never before the granted deadline, nor within a TTL of a keepalive the driver must
        have handled (one sent over half a TTL before the expiry)."""
        now = revoke.msg["timestamp_ns"]
        if now <= lease.ok.msg["lease_expiry_timestamp_ns"]:
            self.fail(f"{lease.describe()} expired at {now}, before its granted deadline")
        handled = [k for k in lease.keepalives if k < now - TTL_NS // 2]
        if handled and now <= max(handled) + TTL_NS:
            gap_ms = (now - max(handled)) / 1e6
            self.fail(f"{lease.describe()} expired {gap_ms:.0f} ms after a keepalive "
                      f"(abandoned: {lease.abandoned})")

    def check_detaches(self) -> None:
        for cid, request in self.detaches.items():
            responses = self.detach_responses.get(cid, [])
            if len(responses) != 1:
                continue  # reported already
            r = responses[0]
            m = request.msg
            lease = self.leases.get(m["lease_id"])
            target = lease if lease is not None and request in lease.detaches else None
            where = f"detach #{r.index} ({request.why}, client {m['client_id']})"
            if target is None:
                if r.msg["code"] != ResponseCode.REJECTED:
                    self.fail(f"{where} of an unknown lease answered "
                              f"{ResponseCode(r.msg['code']).name}")
                continue
            revoke = target.revokes[0] if target.revokes else None
            if revoke is None or revoke.index > r.index:
                self.fail(f"{where} of {target.describe()} answered "
                          f"{ResponseCode(r.msg['code']).name} before the lease's revoke")
                continue
            if r.msg["code"] == ResponseCode.OK:
                if revoke.msg["reason"] != LeaseRevokeReason.DETACHED:
                    self.fail(f"{where} answered OK but the lease was revoked "
                              f"{LeaseRevokeReason(revoke.msg['reason']).name}")
                if target.role == Role.PRODUCER and not any(
                    a.type == "ShmPoolAnnounce" and a.msg["stream_id"] == target.stream_id
                    and a.msg["epoch"] > target.epoch
                    for a in self.wire[revoke.index + 1 : r.index]
                ):
                    self.fail(f"{where} answered before the new epoch's announce")
            elif r.msg["code"] != ResponseCode.REJECTED:
                self.fail(f"{where} answered {r.msg['code']}")

    def check_epochs(self) -> None:
        """Epochs never go back; a producer gets a fresh one, a consumer the current one and
        never one retired by a producer's revoke before it; a producer's end is followed by a
        strictly larger epoch's announce."""
        current: dict[int, int] = {}
        retired: dict[int, int] = {}  # stream id -> newest epoch whose producer was revoked
        for w in self.wire:
            if w.type == "ShmPoolAnnounce":
                stream_id, epoch = w.msg["stream_id"], w.msg["epoch"]
                if epoch < current.get(stream_id, 0):
                    self.fail(f"announce #{w.index}: stream {stream_id} epoch went back")
                current[stream_id] = max(epoch, current.get(stream_id, 0))
            elif w.type == "ShmAttachResponse" and w.msg["code"] == ResponseCode.OK:
                lease = self.leases[w.msg["lease_id"]]
                before = current.get(lease.stream_id)
                if lease.role == Role.PRODUCER and before is not None and lease.epoch <= before:
                    self.fail(f"producer {lease.describe()} got epoch {lease.epoch}, "
                              f"not newer than {before}")
                if lease.role == Role.CONSUMER and before is not None and lease.epoch != before:
                    self.fail(f"consumer {lease.describe()} got epoch {lease.epoch}, "
                              f"the stream's is {before}")
                if lease.epoch <= retired.get(lease.stream_id, 0):
                    self.fail(f"{lease.describe()} got epoch {lease.epoch}, retired by a "
                              "producer revoke before the grant")
                current[lease.stream_id] = max(lease.epoch, before or 0)
                if not any(a.type == "ShmPoolAnnounce" and a.msg["stream_id"] == lease.stream_id
                           and a.msg["epoch"] >= lease.epoch for a in self.wire[w.index + 1 :]):
                    self.fail(f"{lease.describe()}: no announce after the grant")
            elif w.type == "ShmLeaseRevoked" and w.msg["role"] == Role.PRODUCER:
                stream_id = w.msg["stream_id"]
                old = current.get(stream_id, 0)
                revoked = self.leases.get(w.msg["lease_id"])
                if revoked is not None:
                    retired[stream_id] = max(retired.get(stream_id, 0), revoked.epoch)
                if not any(a.type == "ShmPoolAnnounce" and a.msg["stream_id"] == stream_id
                           and a.msg["epoch"] > old for a in self.wire[w.index + 1 :]):
                    self.fail(f"producer revoke #{w.index}: no announce of a newer epoch of "
                              f"stream {stream_id} follows")
        self._check_client_epochs()

    def _check_client_epochs(self) -> None:
        for owner, records in enumerate(self.clients):
            seen: dict[int, int] = {}
            for r in records:
                if r["k"] != "recv" or r["msg"]["type"] != "ShmPoolAnnounce":
                    continue
                stream_id, epoch = r["msg"]["stream_id"], r["msg"]["epoch"]
                if epoch < seen.get(stream_id, 0):
                    self.fail(f"client {owner} saw stream {stream_id}'s epoch go back")
                seen[stream_id] = max(epoch, seen.get(stream_id, 0))

    def counts(self) -> dict[str, int]:
        oks = [w for w in self.wire
               if w.type == "ShmAttachResponse" and w.msg["code"] == ResponseCode.OK]
        revokes = [w for w in self.wire if w.type == "ShmLeaseRevoked"]
        return {
            "attach.ok": len(oks),
            "detach.ok": sum(1 for w in self.wire
                             if w.type == "ShmDetachResponse" and w.msg["code"] == ResponseCode.OK),
            "revoke.DETACHED": sum(1 for w in revokes
                                   if w.msg["reason"] == LeaseRevokeReason.DETACHED),
            "revoke.EXPIRED": sum(1 for w in revokes
                                  if w.msg["reason"] == LeaseRevokeReason.EXPIRED),
        }


# ---------------------------------------------------------------------- the test


def _status(config: Path) -> Rec:
    status: Rec = status_json(config)
    return status


def _check_status(status: Rec, counts: dict[str, int]) -> list[str]:
    problems = []
    if status["leases"]:
        problems.append(f"status still lists leases: {status['leases']}")
    if status["driver"]["state"] != "Driver.Running.Serving":
        problems.append(f"driver state {status['driver']['state']}")
    counters: dict[str, int] = status["counters"]
    for name, seen in counts.items():
        if counters.get(name, 0) != seen:
            problems.append(f"counter {name} = {counters.get(name, 0)}, the wire shows {seen}")
    bad = {k: v for k, v in counters.items()
           if v and k.startswith(("driver.handler_errors", "supervision.child_failed",
                                  "gateway.publish_failed", "gateway.decode_errors",
                                  "gateway.handler_errors", "provision.failed"))}
    if bad:
        problems.append(f"error counters: {bad}")
    return problems


def _load(path: Path) -> list[Rec]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_random_clients_keep_every_protocol_invariant(
    driver_factory: DriverFactory, tmp_path: Path
) -> None:
    seed = int(os.environ.get("TP_STRESS_SEED") or random.SystemRandom().randrange(2**32))
    drv = driver_factory()
    drv.config_path.write_text(drv.config_path.read_text() + EXTRA_STREAMS)
    drv.start()
    observer = Observer(drv.aeron_dir)
    procs: list[subprocess.Popen[bytes]] = []
    logs = [tmp_path / f"client{k}.jsonl" for k in range(CLIENTS)]
    errs = [tmp_path / f"client{k}.err" for k in range(CLIENTS)]
    started = time.monotonic()
    try:
        deadline = time.monotonic() + 10
        while not observer.sub.is_connected:
            assert time.monotonic() < deadline, "observer never connected"
            observer.pump()
        for k in range(CLIENTS):
            settings = {
                "index": k,
                "seed": seed * 16 + k,
                "aeron_dir": drv.aeron_dir,
                "channel": CHANNEL,
                "control_stream": CONTROL_STREAM,
                "base_dir": str(drv.base_dir),
                "out": str(logs[k]),
                "run_s": RUN_S,
                "ttl_ms": TTL_NS // 1_000_000,
                "static_streams": list(STATIC_STREAMS),
                "dynamic_streams": list(DYNAMIC_STREAMS),
                "p_stream_zero": 0.03,
                "own_client_ids": [1000 * (k + 1) + j for j in range(1, 4)],
                # Two of the four share client ids with each other on purpose.
                "shared_client_ids": list(SHARED_CLIENT_IDS) if k < 2 else [],
                "max_action_gap_s": 0.12,
            }
            with errs[k].open("wb") as err:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, str(Path(__file__).with_name("stress_client.py")),
                         json.dumps(settings)],
                        cwd=REPO, env=child_env(), stdout=subprocess.DEVNULL, stderr=err,
                    )
                )
        deadline = time.monotonic() + RUN_S + 20
        while any(p.poll() is None for p in procs):
            assert time.monotonic() < deadline, "stress clients did not finish"
            observer.pump()
        observer.pump_for(0.3)
        assert drv.proc is not None
        assert drv.proc.poll() is None, f"driver exited: {drv.lines}"
        status = _status(drv.config_path)
        assert drv.proc.poll() is None, f"driver exited: {drv.lines}"
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(10)
        observer.close()
    elapsed = time.monotonic() - started
    failed = [(k, p.returncode, errs[k].read_text()[-2000:]) for k, p in enumerate(procs)
              if p.returncode != 0]
    assert not failed, f"seed {seed}: stress clients failed: {failed}"
    checker = Checker(observer.records, [_load(p) for p in logs])
    violations = checker.run()
    violations += _check_status(status, checker.counts())
    summary = (
        f"seed {seed}, {elapsed:.1f} s, {len(checker.wire)} driver messages, "
        f"{len(checker.attaches)} attaches, {len(checker.leases)} leases, "
        f"{len(checker.detaches)} detaches, counts {checker.counts()}"
    )
    print(summary)  # noqa: T201 - shown with -s and on failure
    assert not violations, (
        f"{summary}; records in {tmp_path}; {len(violations)} violations:\n"
        + "\n".join(violations[:40])
    )
