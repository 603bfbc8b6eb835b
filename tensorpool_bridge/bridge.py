"""``Bridge``: the embeddable bridge (network thread, supervisor, mapping actors, status).

``Bridge(cfg).start()`` runs everything in the calling process; ``stop()`` stops it in
reverse order (actors release their leases first, then the network thread closes its Aeron
client, then the status sockets and the clock). ``python launcher.py bridge`` is this plus
signal handling (``tensorpool_bridge.cli``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING, Any, Self

import pykka

from actors.runtime.clock import MonotonicClock
from tensorpool_bridge.actors import BridgeSupervisor, StatusQuery
from tensorpool_bridge.network import NetworkLoop
from tensorpool_bridge.status import StatusServer

if TYPE_CHECKING:
    from types import TracebackType

    from tensorpool_bridge.config import BridgeConfig

log = logging.getLogger(__name__)


class Bridge:
    """One bridge instance in this process."""

    def __init__(self, cfg: BridgeConfig, *, serve_status: bool = True) -> None:
        self.cfg = cfg
        self.failed = threading.Event()
        self.failure = ""
        self._clock = MonotonicClock("bridge-clock")
        self._supervisor: pykka.ActorRef[Any] | None = None
        self._loop = NetworkLoop(cfg, self._notify)
        self._server = StatusServer(cfg.run_dir, self.status) if serve_status else None

    def start(self) -> Self:
        try:
            self._loop.start()
            if self._server is not None:
                self._server.start()
            self._supervisor = BridgeSupervisor.start(
                self.cfg, self._loop, self._clock,
                self._server.publish if self._server is not None else _drop_event,
                self._give_up,
            )
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def healthy(self) -> bool:
        return self._loop.running and not self.failed.is_set()

    def status(self) -> dict[str, Any]:
        """Every mapping half: state, epochs, leases, and its counters (bridge.md §9)."""
        supervisor = self._supervisor
        actors: dict[str, Any] = {"mappings": []}
        if supervisor is not None:
            answer = supervisor.ask(StatusQuery(), timeout=10.0)
            assert isinstance(answer, dict)
            actors = answer
        counters = self._loop.snapshot()
        for entry in actors["mappings"]:
            side = "senders" if entry["role"] == "sender" else "receivers"
            entry["counters"] = counters[side].get(entry["dest_stream_id"], {})
        return {
            "instance_id": self.cfg.instance_id,
            "role": self.cfg.role,
            "effective_chunk_bytes": self.cfg.effective_chunk_bytes,
            "instance_counters": counters["instance"],
            **actors,
        }

    def stop(self) -> None:
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            try:
                supervisor.stop(timeout=30.0)
            except (pykka.ActorDeadError, pykka.Timeout):
                log.warning("bridge supervisor did not stop cleanly")
        self._loop.close()
        if self._server is not None:
            self._server.close()
        self._clock.close()

    def _notify(self, event: object) -> None:
        supervisor = self._supervisor
        if supervisor is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                supervisor.tell(event)

    def _give_up(self, reason: str) -> None:
        log.error("bridge gives up: %s", reason)
        self.failure = reason
        self.failed.set()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _drop_event(_event: object) -> None:
    """Events go nowhere when the bridge is embedded without status sockets."""
