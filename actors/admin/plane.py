"""The admin plane: answer ``status`` and publish lifecycle events over zmq, from one thread.

Neither reference driver can be asked what it holds; ours answers ``tensorpool status`` and
streams ``tensorpool events`` from another shell. One thread owns every zmq socket (pyzmq
sockets are not thread-safe): a ROUTER for status requests (REQ clients talk to it unchanged,
and unlike REP it never wedges when a client vanishes before its reply) and a PUB for events
(a slow subscriber hits its high-water mark and loses events; the driver never waits). The
driver's actors hand events over through a bounded in-memory queue and a wake-up pipe, and the
status query is a non-blocking pykka ``ask``: the driver answers it like any other message,
and the admin thread polls the future between socket polls.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import pykka
import zmq

from actors.admin.curve import curve_keys_for, make_curve_server, start_authenticator
from actors.admin.rundir import (
    AdminConfigError,
    AdminStartError,
    clear_stale_socket,
    prepare_run_dir,
    remove_socket_file,
    secure_socket_file,
)
from actors.admin.to_json import event_json, status_json
from actors.runtime.counters import Counters
from messages.admin import (
    CMD_PING,
    CMD_PROBE,
    CMD_STATUS,
    MAX_PROBE_TOKEN_CHARS,
    MAX_REQUEST_BYTES,
    PROBE_EVENT_KIND,
    events_socket_path,
    ipc_endpoint,
    status_socket_path,
)
from messages.events import DriverEvent, DriverStatus, StatusQuery

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from actors.admin.curve import CurveServerKeys
    from tensorpool_config import DriverConfig

__all__ = ["AdminPlane", "QueueEventSink", "start_admin"]

log = logging.getLogger(__name__)

EVENT_QUEUE_CAPACITY: Final = 10_000
PUB_HWM: Final = 10_000
PUB_LINGER_MS: Final = 200  # bounded flush of the last events at stop
MAX_PENDING_QUERIES: Final = 64
_IDLE_POLL_MS: Final = 500
_PENDING_POLL_MS: Final = 1  # only while a status future is outstanding
_SUN_PATH_MAX: Final = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux
_SOCKET_BYTES_LIMIT: Final = 1 << 20  # peers sending more are disconnected by libzmq

Socket = zmq.Socket[bytes]


class QueueEventSink:
    """EventSink for the driver's actors: append to a bounded queue and poke the admin thread.

    Never blocks and never raises: a full queue (the admin thread stalled) drops the event and
    counts it, because losing an admin event is better than stalling a lease sweep. While
    nobody subscribes (``observed``, kept by the admin thread from XPUB's reports) an event is
    only counted: queueing it would wake the admin thread, a system call and a thread hand-off
    per attach, to throw it away.
    """

    def __init__(self, wake_fd: int, capacity: int = EVENT_QUEUE_CAPACITY) -> None:
        self._queue: deque[DriverEvent] = deque()
        self._capacity = capacity
        self._wake_fd = wake_fd
        self._wake_lock = threading.Lock()  # held only around one non-blocking write
        self.dropped = 0
        self.unobserved = 0
        self.observed = False  # someone subscribes to some topic (set by the admin thread)

    def emit(self, event: DriverEvent) -> None:
        if not self.observed:
            self.unobserved += 1
            return
        if len(self._queue) >= self._capacity:
            self.dropped += 1
            return
        self._queue.append(event)  # deque.append is atomic
        if len(self._queue) != 1:
            # Events ahead of this one are not drained yet: the admin thread, woken for them,
            # drains until the queue is empty, this one included. One wake-up (a system call)
            # per burst instead of per event: a sweep can end 30,000 leases at once.
            return
        with self._wake_lock, contextlib.suppress(OSError):  # a full pipe already means "wake"
            if self._wake_fd >= 0:
                os.write(self._wake_fd, b"\0")

    def close(self) -> None:
        """Stop accepting events and never touch the wake fd again (it is about to be closed,
        and its number may then belong to an unrelated file)."""
        with self._wake_lock:
            self._capacity = 0
            self._wake_fd = -1

    def drain(self) -> list[DriverEvent]:
        out: list[DriverEvent] = []
        while self._queue:
            out.append(self._queue.popleft())
        return out


@dataclass(slots=True)
class _Pending:
    socket: Socket
    envelope: list[bytes]
    future: pykka.Future[object]
    deadline: float


class AdminPlane:
    """Handle on the running admin plane; ``stop()`` is idempotent and callable from any thread."""

    def __init__(
        self,
        config: DriverConfig,
        info: Callable[[], Mapping[str, object]],
        *,
        status_timeout_s: float = 2.0,
        event_capacity: int = EVENT_QUEUE_CAPACITY,
    ) -> None:
        self._config = config
        self._info = info
        self._status_timeout_s = status_timeout_s
        self._driver: pykka.ActorRef[pykka.Actor] | None = None
        self._stopping = threading.Event()
        self._topics: set[bytes] = set()  # event topics someone subscribes to (XPUB)
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.events = QueueEventSink(self._wake_w, event_capacity)
        self.counters = Counters()
        self._endpoints: tuple[str, ...] = ()
        self._socket_files: tuple[Path, ...] = ()
        self._stop_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="admin-plane", daemon=True)

    # -- public API -------------------------------------------------------------------------

    @property
    def endpoints(self) -> tuple[str, ...]:
        """Bound endpoints: status ipc, events ipc, then the TCP status endpoint if any."""
        return self._endpoints

    def bind_driver(self, driver_ref: pykka.ActorRef[Any]) -> None:
        """Status queries go to this DriverActor from now on (before: a "not ready" error)."""
        self._driver = driver_ref

    def stop(self) -> None:
        """Close the sockets, remove the socket files, end the thread."""
        with self._stop_lock:
            if self._stopping.is_set():
                return
            self._stopping.set()
        self._wake()
        if self._thread.is_alive():
            self._thread.join()
        self.events.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- start-up (caller's thread, then the admin thread) ------------------------------------

    def _start(self) -> None:
        run_dir = self._config.admin.run_dir
        if run_dir is None:
            raise AdminConfigError("admin.run_dir is not set")
        keys = curve_keys_for(self._config)
        prepare_run_dir(run_dir)
        for path in (status_socket_path(run_dir), events_socket_path(run_dir)):
            if len(os.fsencode(path)) > _SUN_PATH_MAX:
                raise AdminStartError(
                    f"admin socket path {str(path)!r} is longer than a unix socket allows"
                    f" ({_SUN_PATH_MAX} bytes); set admin.run_dir to a shorter directory"
                )
            clear_stale_socket(path)
        self._keys = keys
        self._run_dir = run_dir
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            self._thread.join()
            self.stop()
            raise self._start_error

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"\0")

    # -- the admin thread -------------------------------------------------------------------

    def _run(self) -> None:
        context: zmq.Context[Socket] | None = None
        sockets: list[Socket] = []
        auth = None
        try:
            try:
                context = zmq.Context()
                status = self._socket(context, sockets, zmq.ROUTER)
                # XPUB: a PUB that also reports its subscriptions, so events nobody follows
                # are not encoded at all (a sweep can end 30,000 leases at once).
                events = self._socket(context, sockets, zmq.XPUB)
                events.setsockopt(zmq.SNDHWM, PUB_HWM)
                events.setsockopt(zmq.LINGER, PUB_LINGER_MS)
                endpoints = [
                    self._bind_ipc(status, status_socket_path(self._run_dir)),
                    self._bind_ipc(events, events_socket_path(self._run_dir)),
                ]
                tcp: Socket | None = None
                if self._keys is not None:
                    auth = start_authenticator(context, self._keys)
                    tcp = self._tcp_socket(context, sockets, self._keys)
                    endpoints.append(tcp.getsockopt_string(zmq.LAST_ENDPOINT))
                self._endpoints = tuple(endpoints)
            except (zmq.ZMQError, OSError) as exc:
                self._start_error = AdminStartError(f"admin plane cannot bind: {exc}")
                return
            except Exception as exc:  # never report a start that did not happen as a success
                log.exception("admin plane failed to start")
                self._start_error = AdminStartError(f"admin plane failed to start: {exc!r}")
                return
            finally:
                self._ready.set()
            self._loop(status, tcp, events)
            self._publish(events)  # what the driver said last (e.g. "shutdown") still goes out
        except Exception:
            log.exception("admin plane thread failed; status and events are unavailable")
        finally:
            for sock in sockets:
                sock.close(linger=0)
            if auth is not None:
                auth.stop()
            if context is not None:
                context.term()
            for path in self._socket_files:
                remove_socket_file(path)

    def _bind_ipc(self, sock: Socket, path: Path) -> str:
        """Bind ``sock`` to a unix socket file, 0600; the file is removed at stop."""
        endpoint = ipc_endpoint(path)
        sock.bind(endpoint)
        self._socket_files = (*self._socket_files, path)
        secure_socket_file(path)
        return endpoint

    def _socket(self, context: zmq.Context[Socket], sockets: list[Socket], kind: int) -> Socket:
        sock = context.socket(kind)
        sockets.append(sock)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDTIMEO, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, _SOCKET_BYTES_LIMIT)
        return sock

    def _tcp_socket(
        self, context: zmq.Context[Socket], sockets: list[Socket], keys: CurveServerKeys
    ) -> Socket:
        sock = self._socket(context, sockets, zmq.ROUTER)
        make_curve_server(sock, keys)
        sock.bind(self._config.admin.tcp_endpoint)
        return sock

    def _loop(self, status: Socket, tcp: Socket | None, events: Socket) -> None:
        poller = zmq.Poller()
        poller.register(status, zmq.POLLIN)
        if tcp is not None:
            poller.register(tcp, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        poller.register(events, zmq.POLLIN)  # (un)subscriptions
        pending: list[_Pending] = []
        while not self._stopping.is_set():
            timeout = _PENDING_POLL_MS if pending else _IDLE_POLL_MS
            ready = dict(poller.poll(timeout))
            if self._wake_r in ready:
                with contextlib.suppress(OSError):
                    os.read(self._wake_r, 4096)
            for sock in (status, tcp):
                if sock is not None and sock in ready:
                    self._serve(sock, pending)
            if events in ready:
                self._track_subscriptions(events)
            self._publish(events)
            pending[:] = [p for p in pending if not self._try_answer(p)]

    # -- status -----------------------------------------------------------------------------

    def _serve(self, sock: Socket, pending: list[_Pending]) -> None:
        """Answer every queued request (ROUTER frames: identity, [envelope...], b"", body)."""
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.counters.inc("admin.requests")
            if b"" in frames[1:]:
                split = frames.index(b"", 1) + 1
                envelope, body = frames[:split], frames[split:]
            else:  # a DEALER without a delimiter: answer it the same way
                envelope, body = frames[:1], frames[1:]
            self._handle(sock, envelope, body, pending)

    def _handle(
        self, sock: Socket, envelope: list[bytes], body: list[bytes], pending: list[_Pending]
    ) -> None:
        request, problem = _parse_request(body)
        if request is None:
            self._reply_error(sock, envelope, problem, malformed=True)
            return
        cmd = request["cmd"]
        if cmd == CMD_PING:
            self._reply(
                sock,
                envelope,
                {
                    "ok": True,
                    "pong": True,
                    "instance_id": self._config.driver.instance_id,
                    "pid": os.getpid(),
                },
            )
        elif cmd == CMD_PROBE:
            self._probe(sock, envelope, request.get("token"))
        elif cmd == CMD_STATUS:
            self._ask_status(sock, envelope, pending)
        else:
            self._reply_error(sock, envelope, f"unknown cmd {cmd!r}", malformed=True)

    def _ask_status(self, sock: Socket, envelope: list[bytes], pending: list[_Pending]) -> None:
        """Ask the driver without blocking; the loop answers once the future resolves."""
        driver = self._driver
        if driver is None:
            self._reply_error(sock, envelope, "driver not started yet")
            return
        if len(pending) >= MAX_PENDING_QUERIES:
            self._reply_error(sock, envelope, "too many status queries in flight")
            return
        try:
            future: pykka.Future[object] = driver.ask(StatusQuery(), block=False)
        except pykka.ActorDeadError:
            self._reply_error(sock, envelope, "driver actor is not running")
            return
        deadline = time.monotonic() + self._status_timeout_s
        pending.append(_Pending(sock, envelope, future, deadline))

    def _probe(self, sock: Socket, envelope: list[bytes], token: object) -> None:
        """Answer, then publish an ``admin.probe`` event with the token (after earlier events).

        A subscriber that sees its own token has joined: the ``events`` CLI probes until then,
        so it never misses an event emitted after it says "following".
        """
        if not isinstance(token, str) or not 0 < len(token) <= MAX_PROBE_TOKEN_CHARS:
            self._reply_error(
                sock,
                envelope,
                f'probe needs a "token" string of 1 to {MAX_PROBE_TOKEN_CHARS} characters',
                malformed=True,
            )
            return
        self.counters.inc("admin.probes")
        self.events.emit(DriverEvent(PROBE_EVENT_KIND, time.monotonic_ns(), {"token": token}))
        self._reply(sock, envelope, {"ok": True, "probe": token})

    def _try_answer(self, p: _Pending) -> bool:
        """True once ``p`` got its reply (resolved, failed, or timed out)."""
        try:
            result = p.future.get(timeout=0)
        except pykka.Timeout:
            if time.monotonic() < p.deadline:
                return False
            self.counters.inc("admin.status_timeouts")
            error = f"driver did not answer within {self._status_timeout_s:g} s"
        except pykka.ActorDeadError:
            error = "driver actor is not running"
        except Exception as exc:
            log.warning("status query failed: %r", exc)
            error = f"status query failed: {exc!r}"
        else:
            error = self._answer_status(p, result)
            if not error:
                return True
        self._reply_error(p.socket, p.envelope, error)
        return True

    def _answer_status(self, p: _Pending, result: object) -> str:
        """Reply with the status; return the error text instead if it cannot be rendered."""
        if not isinstance(result, DriverStatus):
            return f"driver answered {type(result).__name__}, not DriverStatus"
        try:
            body = status_json(result, self._driver_info(), self._own_counters())
        except Exception as exc:
            log.warning("cannot render status: %r", exc)
            return f"cannot render status: {exc!r}"
        self._reply(p.socket, p.envelope, {"ok": True, "status": body})
        return ""

    def _driver_info(self) -> dict[str, object]:
        info: dict[str, object] = {
            "aeron_dir": self._config.driver.aeron_dir,
            "shm_base_dir": str(self._config.shm.base_dir),
        }
        try:
            info.update(self._info())
        except Exception as exc:
            log.warning("admin info() failed: %r", exc)
            info["info_error"] = repr(exc)
        return info

    def _own_counters(self) -> dict[str, int]:
        counters = dict(self.counters.snapshot())
        counters["admin.events_dropped"] = self.events.dropped + counters.get(
            "admin.events_dropped", 0
        )
        counters["admin.events_unobserved"] = self.events.unobserved + counters.get(
            "admin.events_unobserved", 0
        )
        return counters

    def _reply_error(
        self, sock: Socket, envelope: list[bytes], error: str, *, malformed: bool = False
    ) -> None:
        if malformed:
            self.counters.inc("admin.malformed_requests")
        self._reply(sock, envelope, {"ok": False, "error": error})

    def _reply(self, sock: Socket, envelope: list[bytes], message: dict[str, object]) -> None:
        data = json.dumps(message, separators=(",", ":")).encode()
        try:
            sock.send_multipart([*envelope, data], zmq.NOBLOCK)
        except zmq.ZMQError:  # the peer is gone or its pipe is full: its loss, not ours
            self.counters.inc("admin.replies_failed")

    # -- events -----------------------------------------------------------------------------

    def _track_subscriptions(self, events: Socket) -> None:
        """XPUB reports a topic's first subscriber (0x01 + topic) and its last leaving (0x00)."""
        while True:
            try:
                frame = events.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if frame[:1] == b"\x01":
                self._topics.add(frame[1:])
            elif frame[:1] == b"\x00":
                self._topics.discard(frame[1:])
            self.events.observed = bool(self._topics)

    def _publish(self, events: Socket) -> None:
        drained = self.events.drain()
        if not self._topics:
            if drained:
                self.counters.inc("admin.events_unobserved", len(drained))
            return
        for event in drained:
            try:
                data = json.dumps(event_json(event, time.time_ns()), separators=(",", ":"))
            except (TypeError, ValueError) as exc:
                log.warning("event %r is not JSON-ready: %r", event.kind, exc)
                self.counters.inc("admin.events_unencodable")
                continue
            try:
                events.send(data.encode(), zmq.NOBLOCK)
                self.counters.inc("admin.events_published")
            except zmq.ZMQError:
                self.counters.inc("admin.events_dropped")


def _parse_request(body: list[bytes]) -> tuple[dict[str, object] | None, str]:
    """The request object, or None and why it is malformed."""
    if len(body) != 1:
        return None, f"expected one request frame, got {len(body)}"
    raw = body[0]
    if len(raw) > MAX_REQUEST_BYTES:
        return None, f"request of {len(raw)} bytes exceeds {MAX_REQUEST_BYTES} bytes"
    try:
        request = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"request is not JSON: {exc}"
    if not isinstance(request, dict):
        return None, "request is not a JSON object"
    if not isinstance(request.get("cmd"), str):
        return None, 'request has no string "cmd"'
    return request, ""


def start_admin(
    config: DriverConfig,
    info: Callable[[], Mapping[str, object]],
    *,
    status_timeout_s: float = 2.0,
) -> AdminPlane:
    """Start the admin plane, or raise AdminStartError (AdminConfigError for bad CURVE setup).

    ``info()`` is called on the admin thread for every status reply: it must be thread-safe
    and quick. Its ``counters`` mapping is merged into the driver's counters; its other keys
    (``aeron_dir``, ``shm_base_dir``, ...) are shown on the driver line.
    """
    if not config.admin.enabled:
        return AdminPlane(config, info, event_capacity=0)  # not started: events are dropped
    plane = AdminPlane(config, info, status_timeout_s=status_timeout_s)
    try:
        plane._start()  # noqa: SLF001
    except BaseException:
        plane.stop()
        raise
    return plane
