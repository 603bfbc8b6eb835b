"""The bridge's actors: one ``MappingActor`` per mapping half under a ``BridgeSupervisor``.

A mapping actor hosts the mapping HSM and does its blocking work (attach, detach, re-attach
through the client adapter), then hands the lease to the network thread. Supervision
follows the driver's written policy (actors/supervision.py): a child whose handler raises is
stopped by pykka and reported with ``MappingHalfFailed``; the supervisor starts a fresh child for
the same mapping half, and ``RestartIntensity`` (5 failures in 10 s) escalates to stopping
the whole bridge, which its own supervisor (systemd) restarts better than we would.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import pykka

from actors.driver.supervision import RestartIntensity
from actors.runtime.hsm import Hsm
from actors.runtime.timer import PeriodicTimer
from tensorpool_bridge.client_adapter import DestStream, SourceStream, driver_client
from tensorpool_bridge.mapping_machine import (
    MAPPING_MACHINE,
    Attach,
    Attached,
    AttachFailed,
    LeaseLost,
    MappingModel,
    NeedNewLocalEpoch,
    Reattach,
    Release,
    RetryAfter,
    RetryDue,
    SourceEpoch,
    StateChanged,
    Stop,
)
from tensorpool_bridge.network import AnnounceApplied, NewSourceEpoch, SourceAnnounced

if TYPE_CHECKING:
    from collections.abc import Callable

    from actors.runtime.clock import Clock
    from messages import ShmPoolAnnounce
    from tensorpool_bridge.config import BridgeConfig, Mapping_
    from tensorpool_bridge.network import NetworkLoop
    from tensorpool_bridge.reassembly import SourceAnnounce
    from tensorpool_client import DriverClient

log = logging.getLogger(__name__)

TICK_PERIOD_NS: Final = 100_000_000
EVENT_HISTORY: Final = 256


@dataclass(frozen=True, slots=True)
class Tick:
    now_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MappingHalfFailed:
    """A mapping half's handler raised (its ``on_failure``): the supervisor restarts it."""

    role: str
    key: int
    detail: str


@dataclass(frozen=True, slots=True)
class StatusQuery:
    pass


@dataclass(frozen=True, slots=True)
class BridgeEvent:
    """A mapping state change, as published on the events socket."""

    timestamp_ns: int
    role: str
    dest_stream_id: int
    state: str
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"timestamp_ns": self.timestamp_ns, "role": self.role,
                "dest_stream_id": self.dest_stream_id, "state": self.state,
                "detail": self.detail}


class MappingActor(pykka.ThreadingActor):
    """One mapping half: its HSM, its local lease, and the effects the HSM decides."""

    use_daemon_thread = True

    def __init__(  # noqa: PLR0917 - pykka passes start() arguments positionally
        self, cfg: BridgeConfig, mapping: Mapping_, role: str, loop: NetworkLoop, clock: Clock,
        supervisor: pykka.ActorRef[Any], on_event: Callable[[BridgeEvent], None],
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.mapping = mapping
        self.role = role
        self.loop = loop
        self.clock = clock
        self.supervisor = supervisor
        self.on_event = on_event
        self.key = mapping.dest_stream_id
        self.hsm = Hsm(MAPPING_MACHINE, MappingModel(role, self.key, cfg.attach_backoff_ms))
        self.client: DriverClient | None = None
        self.stream: SourceStream | DestStream | None = None
        self.retry: Any = None
        self.timer: PeriodicTimer | None = None

    def on_start(self) -> None:
        self._perform(self.hsm.start())
        self.timer = PeriodicTimer(self.clock, TICK_PERIOD_NS,
                                   self.clock.now_ns() + TICK_PERIOD_NS, self.actor_ref, Tick)

    def on_receive(self, message: Any) -> Any:
        match message:
            case StatusQuery():
                return self._status()
            case Tick():
                self._check_lease()
            case SourceAnnounced(epoch=epoch) | AnnounceApplied(epoch=epoch):
                self._dispatch(SourceEpoch(epoch))
            case NewSourceEpoch(epoch=epoch):
                self._dispatch(NeedNewLocalEpoch(epoch))
            case _:
                self._dispatch(message)
        return None

    def on_failure(
        self, exception_type: Any, exception_value: Any, traceback: Any,  # noqa: ARG002
    ) -> None:
        self._cleanup()
        _tell(
            self.supervisor,
            MappingHalfFailed(role=self.role, key=self.key, detail=repr(exception_value)),
        )

    def on_stop(self) -> None:
        if self.hsm.started:
            self._perform(self.hsm.dispatch(Stop()))
        self._cleanup()

    # ------------------------------------------------------------------ effects

    def _dispatch(self, event: object) -> None:
        self._perform(self.hsm.dispatch(event))

    def _perform(self, effects: list[object]) -> None:
        for effect in effects:
            match effect:
                case Attach() | Reattach():
                    self._release()
                    self._attach()
                case Release():
                    self._release()
                case RetryAfter(delay_ms=delay):
                    self.retry = self.clock.call_at(
                        self.clock.now_ns() + delay * 1_000_000, self._retry_due)
                case StateChanged(state=state, detail=detail):
                    log.info("%s %d: %s %s", self.role, self.key, state, detail)
                    self.on_event(BridgeEvent(time.time_ns(), self.role, self.key, state, detail))
                case _:
                    raise TypeError(f"unknown effect {effect!r}")

    def _retry_due(self) -> None:
        """On the clock's thread: only tell."""
        _tell(self.actor_ref, RetryDue())

    def _attach(self) -> None:
        try:
            if self.client is None or not self.client.aeron.running:
                if self.client is not None:
                    self.client.close()
                self.client = driver_client(self.cfg)
            if self.role == "sender":
                source = SourceStream(self.client, self.cfg, self.mapping.source_stream_id)
                self.stream = source
                self.loop.install_source(self.mapping.source_stream_id, source)
                known = self.loop.call(lambda: _epoch_of(
                    self.loop.senders[self.mapping.source_stream_id].announce))
            else:
                dest = DestStream(self.client, self.cfg, self.mapping.dest_stream_id)
                self.stream = dest
                self.loop.install_dest(self.key, dest)
                self.loop.receivers[self.key].counters["local_reattach"] += 1
                known = self.loop.call(lambda: _epoch_of(
                    self.loop.receivers[self.key].reassembler.announce))
        except Exception as exc:
            log.warning("%s %d: attach failed: %s", self.role, self.key, exc)
            self._dispatch(AttachFailed(str(exc) or type(exc).__name__))
            return
        self._dispatch(Attached(announce_known=known is not None))
        if known is not None:
            self._dispatch(SourceEpoch(known))

    def _release(self) -> None:
        stream, self.stream = self.stream, None
        if stream is None:
            return
        if self.loop.running:
            if self.role == "sender":
                self.loop.install_source(self.mapping.source_stream_id, None)
            else:
                self.loop.install_dest(self.key, None)
        try:
            stream.close()
        except Exception as exc:
            log.warning("%s %d: releasing the lease failed: %s", self.role, self.key, exc)

    def _check_lease(self) -> None:
        stream = self.stream
        if stream is None:
            return
        client = self.client
        if client is None or not client.aeron.running:
            self._dispatch(LeaseLost("local media driver gone"))
        elif not stream.lease_valid():
            self._dispatch(LeaseLost("lease revoked or driver shut down"))

    def _cleanup(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.retry is not None:
            self.retry.cancel()
        self._release()
        if self.client is not None:
            self.client.close()
            self.client = None

    def _status(self) -> dict[str, Any]:
        m = self.hsm.model
        lease = None if self.stream is None else self.stream.lease
        return {
            "role": self.role,
            "source_stream_id": self.mapping.source_stream_id,
            "dest_stream_id": self.key,
            "state": self.hsm.state,
            "source_epoch": m.source_epoch,
            "local_epoch": None if self.stream is None else self.stream.epoch,
            "lease_id": None if lease is None else lease.lease_id,
            "attach_failures": m.attach_failures,
            "reattaches": m.reattaches,
            "last_error": m.last_error,
        }


def _epoch_of(announce: ShmPoolAnnounce | SourceAnnounce | None) -> int | None:
    return None if announce is None else announce.epoch


def _tell(ref: pykka.ActorRef[Any], message: object) -> None:
    with contextlib.suppress(pykka.ActorDeadError):
        ref.tell(message)


class BridgeSupervisor(pykka.ThreadingActor):
    """Starts, restarts and stops the mapping actors; answers status; keeps recent events."""

    use_daemon_thread = True

    def __init__(self, cfg: BridgeConfig, loop: NetworkLoop, clock: Clock,
                 publish: Callable[[BridgeEvent], None], on_give_up: Callable[[str], None]) -> None:
        super().__init__()
        self.cfg = cfg
        self.loop = loop
        self.clock = clock
        self.publish = publish
        self.on_give_up = on_give_up
        self.intensity = RestartIntensity()
        self.children: dict[tuple[str, int], pykka.ActorRef[Any]] = {}
        self.events: deque[BridgeEvent] = deque(maxlen=EVENT_HISTORY)
        self.child_failures = 0

    def on_start(self) -> None:
        for m in self.cfg.mappings:
            for role in self._roles():
                self._spawn(role, m)

    def _roles(self) -> list[str]:
        return [r for r, on in (("sender", self.cfg.sends), ("receiver", self.cfg.receives))
                if on]

    def _spawn(self, role: str, mapping: Mapping_) -> None:
        me = self.actor_ref
        self.children[role, mapping.dest_stream_id] = MappingActor.start(
            self.cfg, mapping, role, self.loop, self.clock, me,
            lambda ev: _tell(me, ev))

    def on_receive(self, message: Any) -> Any:
        match message:
            case BridgeEvent():
                self.events.append(message)
                self.publish(message)
            case SourceAnnounced(dest_stream_id=key):
                self._forward(("sender", key), message)
            case AnnounceApplied(dest_stream_id=key) | NewSourceEpoch(dest_stream_id=key):
                self._forward(("receiver", key), message)
            case MappingHalfFailed(role=role, key=key, detail=detail):
                self._child_failed(role, key, detail)
            case StatusQuery():
                return self._status()
            case _:
                log.warning("bridge supervisor: unexpected message %r", message)
        return None

    def _forward(self, key: tuple[str, int], message: object) -> None:
        child = self.children.get(key)
        if child is not None:
            _tell(child, message)

    def _child_failed(self, role: str, key: int, detail: str) -> None:
        log.error("%s %d failed: %s", role, key, detail)
        self.child_failures += 1
        self.children.pop((role, key), None)
        self.on_receive(BridgeEvent(time.time_ns(), role, key, "failed", detail))
        if self.intensity.record(self.clock.now_ns()):
            self.on_give_up(f"{len(self.intensity)} mapping failures in 10 s; last: {detail}")
            return
        mapping = next(m for m in self.cfg.mappings if m.dest_stream_id == key)
        self._spawn(role, mapping)

    def _status(self) -> dict[str, Any]:
        futures = {key: ref.ask(StatusQuery(), block=False) for key, ref in self.children.items()}
        mappings: list[dict[str, Any]] = []
        for (role, key), fut in futures.items():
            try:
                mappings.append(fut.get(timeout=2.0))
            except Exception as exc:  # a child stuck in an attach still shows up
                mappings.append({"role": role, "dest_stream_id": key, "state": "busy",
                                 "detail": repr(exc)})
        return {"mappings": mappings, "child_failures": self.child_failures,
                "recent_events": [e.as_json() for e in list(self.events)[-20:]]}

    def on_stop(self) -> None:
        for ref in self.children.values():
            with contextlib.suppress(pykka.ActorDeadError):
                ref.stop()
