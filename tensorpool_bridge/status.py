"""The bridge's status and events sockets: a small equivalent of the driver's admin plane.

The driver's admin plane (actors/admin*.py) is built around the driver's configuration and
status model, so the bridge serves its own two sockets in its run dir, from one thread (zmq
sockets are not thread-safe): a ROUTER answering ``status`` with one JSON document, and a
PUB streaming mapping state changes as JSON lines. Events are handed over through a bounded
queue; a full queue or a slow subscriber loses events, the bridge never waits.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections import deque
from typing import TYPE_CHECKING, Any, Final

import zmq

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tensorpool_bridge.actors import BridgeEvent

log = logging.getLogger(__name__)

STATUS_SOCKET: Final = "status.sock"
EVENTS_SOCKET: Final = "events.sock"
SUN_PATH_MAX: Final = 107
EVENT_QUEUE: Final = 10_000
_POLL_MS: Final = 50


def status_endpoint(run_dir: Path) -> str:
    return f"ipc://{run_dir / STATUS_SOCKET}"


def events_endpoint(run_dir: Path) -> str:
    return f"ipc://{run_dir / EVENTS_SOCKET}"


def _socket_path(run_dir: Path, name: str) -> Path:
    path = run_dir / name
    if len(str(path).encode()) > SUN_PATH_MAX:
        raise ValueError(f"socket path {path} exceeds {SUN_PATH_MAX} bytes: set a shorter "
                         "bridge.run_dir")
    return path


class StatusServer:
    """Serves ``status`` from ``answer()`` and publishes events given to ``publish``."""

    def __init__(self, run_dir: Path, answer: Callable[[], dict[str, Any]]) -> None:
        self.run_dir = run_dir
        self._answer = answer
        self._events: deque[BridgeEvent] = deque(maxlen=EVENT_QUEUE)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bridge-status", daemon=True)

    def start(self) -> None:
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise RuntimeError(f"bridge status sockets: {self._error}")

    def publish(self, event: BridgeEvent) -> None:
        self._events.append(event)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        ctx = zmq.Context()
        router = ctx.socket(zmq.ROUTER)
        pub = ctx.socket(zmq.PUB)
        try:
            for sock, name in ((router, STATUS_SOCKET), (pub, EVENTS_SOCKET)):
                path = _socket_path(self.run_dir, name)
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                sock.setsockopt(zmq.LINGER, 200)
                sock.bind(f"ipc://{path}")
                path.chmod(0o600)
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            router.close()
            pub.close()
            ctx.term()
            return
        self._ready.set()
        try:
            while not self._stop.is_set():
                if router.poll(_POLL_MS):
                    self._serve(router)
                while self._events:
                    event = self._events.popleft()
                    pub.send_string(json.dumps(event.as_json()), zmq.NOBLOCK)
        finally:
            router.close()
            pub.close()
            ctx.term()
            for name in (STATUS_SOCKET, EVENTS_SOCKET):
                with contextlib.suppress(FileNotFoundError):
                    (self.run_dir / name).unlink()

    def _serve(self, router: zmq.Socket[bytes]) -> None:
        frames = router.recv_multipart()
        identity, request = frames[0], frames[-1]
        if request.strip() == b"status":
            try:
                body = json.dumps(self._answer(), default=str).encode()
            except Exception as exc:
                body = json.dumps({"error": repr(exc)}).encode()
        else:
            body = json.dumps({"error": "unknown request; send 'status'"}).encode()
        router.send_multipart([identity, b"", body])
