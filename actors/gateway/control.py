"""ControlGateway: the driver's only Aeron code (the adapter and the proxy of the conductor).

One thread owns the Aeron client, the control subscription and every publication
(notes/pyaeron-and-pykka.md: the binding's objects are not thread-safe, a handler must never
close or re-poll, and a loop that never idles starves every other Python thread of the GIL).
Inbound, it decodes fragments at the edge and tells the DriverActor plain messages; actors
never see a buffer or a decode error. Outbound, it is the actors' ``Outbox``: ``send`` only
appends to a queue, and the poll thread encodes and offers in call order.

Publications are *exclusive*: a concurrent IPC publication is shared by every client of the
media driver on the same channel and stream, so it would carry the clients' session id and
the own-traffic filter below would discard their requests.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pyaeron

import messages
from actors.gateway.outbox import PublicationQueue
from actors.runtime.clock import HostedClock
from actors.runtime.counters import Counters
from actors.runtime.dispatcher import HostedDispatcher
from actors.runtime.intake import IntakeHorizon
from actors.runtime.rate_limited_log import RateLimitedLog
from messages.control import (
    ShmAttachRequest,
    ShmDetachRequest,
    ShmDriverShutdownRequest,
    ShmLeaseKeepalive,
)
from messages.events import (
    COUNTER_DECODE_ERRORS,
    COUNTER_HANDLER_ERRORS,
    COUNTER_IGNORED,
    COUNTER_PUBLISH_FAILED,
    AttachVersionUnsupported,
    IntakeCaughtUp,
    Keepalives,
)
from messages.sbe import HEADER
from messages.wire import ConsumerHello

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from tensorpool_config import DriverConfig

_log = logging.getLogger(__name__)

# (schemaId, templateId) of what the driver acts on (sbe.md §7, driver-behaviour.md §2).
HANDLED: frozenset[tuple[int, int]] = frozenset(
    (cls.SCHEMA_ID, cls.TEMPLATE_ID)
    for cls in (
        ShmAttachRequest,
        ShmDetachRequest,
        ShmLeaseKeepalive,
        ShmDriverShutdownRequest,
        ConsumerHello,
    )
)
ATTACH_REQUEST = (ShmAttachRequest.SCHEMA_ID, ShmAttachRequest.TEMPLATE_ID)

COUNTER_RECEIVED = "gateway.received"  # + "." + message class name
COUNTER_AERON_ERRORS = "gateway.aeron_errors"

FRAGMENT_LIMIT = 10  # driver-behaviour.md §2: at most 10 fragments per poll
OWN_SKIP_LIMIT = 256  # own fragments consumed per loop turn while the mailbox is full
# Idle parks. Outgoing messages never wait for a park (``send`` wakes the thread); inbound
# requests wait at most one park. A wake-up costs 31-38 us of CPU on the 2-core VM whatever the
# park and whatever the primitive (a timed lock, sleep, poll and epoll all measured alike: it
# is the kernel's timer wake-up), so the park is short only where a request is likely: right
# after a reply (a response or revoke) went out, a client typically answers it (a detach after
# its attach, the next attach, a re-attach), so for 2 ms the park is 50 us, then 250 us until
# 50 ms. A steady stream of keepalives asks for no reply and leaves the park long. Otherwise it
# is 1 ms (as the C driver's idle sleep) until 1 s, then 1.5 ms while anyone has sent a request
# in the last 3 s (a keepalive waits at most one park before it is read, and a lease's deadline
# runs from when it is read, so this park also bounds how late a revoke can look to a client).
# After 3 s without a request no lease can be alive (none outlives its keepalives by more than
# the 3 s default grace): the driver is idle and parks 2.5 ms, ~400 wake-ups a second, about
# 2 % of a core for the whole process (1.5 ms parks measured 2.1-3.5 %, over the 3 % budget).
# Only the first request after such a silence waits out a 2.5 ms park.
HOT_PARK_NS = 50_000
HOT_WINDOW_NS = 2_000_000
WARM_PARK_NS = 250_000
WARM_WINDOW_NS = 50_000_000
COOL_PARK_NS = 1_000_000
COOL_WINDOW_NS = 1_000_000_000
HEARD_PARK_NS = 1_500_000
HEARD_WINDOW_NS = 3_000_000_000
DEFAULT_MAX_PARK_NS = 2_500_000
DEFAULT_DRIVER_TIMEOUT_MS = 2_500
# An announce (soft state) that could not be offered for this long is dropped: the next one
# supersedes it. Control messages are never dropped (outbox.py).
DEFAULT_SOFT_DEADLINE_NS = 1_000_000_000
# Requests the DriverActor may have waiting before the gateway stops reading the control
# stream. The driver absorbs ~50,000 keepalives/s (bench/attach.py), so the mailbox adds at most
# ~0.1 s and bounded memory to another client's keepalive during a flood; beyond it requests
# wait in the Aeron log, where flow control keeps each publisher within half a term of the
# gateway (~20,000 keepalives with the 4 MiB default term, under 0.5 s of work).
DEFAULT_MAX_BACKLOG = 5_000
# Control messages waiting to be offered before the gateway stops reading requests: every
# request can cause a reply, so this bounds the outgoing queue (plus one revoke per lease)
# while a slow subscriber back-pressures the control publication.
DEFAULT_MAX_OUTGOING = 20_000
IDLE_TURN_NS = 50_000_000  # how often an idle gateway still runs its outer checks
PR_SET_TIMERSLACK = 29  # prctl(2): the thread's timer slack, so a 50 us park is not 100 us
GATEWAY_TIMER_SLACK_NS = 1_000
COUNTER_THROTTLED = "gateway.throttled_polls"


class Target(Protocol):
    """What the gateway tells decoded requests to (a pykka ``ActorRef`` in production)."""

    def tell(self, message: Any) -> None: ...


class GatewayError(RuntimeError):
    """The gateway could not start (no media driver, channel refused) or lost Aeron."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayChannels:
    """Where the gateway subscribes and publishes (the ``[driver]`` keys)."""

    control_channel: str
    control_stream_id: int
    announce_channel: str
    announce_stream_id: int
    qos_channel: str
    qos_stream_id: int

    @classmethod
    def from_config(cls, config: DriverConfig) -> GatewayChannels:
        d = config.driver
        return cls(
            control_channel=d.control_channel,
            control_stream_id=d.control_stream_id,
            announce_channel=d.announce_channel,
            announce_stream_id=d.announce_stream_id,
            qos_channel=d.qos_channel,
            qos_stream_id=d.qos_stream_id,
        )

    @property
    def announce_shares_control(self) -> bool:
        return (self.announce_channel, self.announce_stream_id) == (
            self.control_channel,
            self.control_stream_id,
        )


class ControlGateway:
    """Owns Aeron on one thread; decodes inbound requests and publishes outbound messages."""

    def __init__(
        self,
        aeron_dir: str,
        channels: GatewayChannels,
        *,
        on_fatal: Callable[[str], None] | None = None,
        driver_timeout_ms: int = DEFAULT_DRIVER_TIMEOUT_MS,
        soft_deadline_ns: int = DEFAULT_SOFT_DEADLINE_NS,
        max_park_ns: int = DEFAULT_MAX_PARK_NS,
        max_backlog: int = DEFAULT_MAX_BACKLOG,
        max_outgoing: int = DEFAULT_MAX_OUTGOING,
    ) -> None:
        self.aeron_dir = aeron_dir
        self.channels = channels
        self._on_fatal = on_fatal
        self._driver_timeout_ms = driver_timeout_ms
        self._soft_deadline_ns = soft_deadline_ns
        self._max_park_ns = max_park_ns
        self._max_backlog = max_backlog
        self._max_outgoing = max_outgoing
        self._backlog: Callable[[], int] = _no_backlog
        self._counters = Counters()
        self._rate_log = RateLimitedLog(_log)
        self._outgoing: deque[messages.SbeMessage] = deque()  # append/popleft: thread-safe
        self._wake = Waker()  # set by whoever queues work for the poll thread
        self.intake = IntakeHorizon(self._wake.set)
        # The DriverActor runs here (start_driver_system(driver_host=gateway.host)): a request
        # is decoded, decided and its reply offered on this one thread.
        self.host = HostedDispatcher(name="driver")
        self.host.bind(self._wake.set)
        # Its timers fire here too (start_driver_system(clock=gateway.clock)): a lease check
        # is fired, decided and its revokes offered without waking another thread.
        self.clock = HostedClock(name="gateway-clock")
        self.clock.bind(self._wake.set)
        self._aeron_errors: deque[tuple[int, str]] = deque(maxlen=64)
        self._target: Target | None = None
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._closing = False
        self._flush_deadline_ns = 0
        self._startup_error: BaseException | None = None
        self.fatal_reason: str | None = None
        self._own_sessions: frozenset[int] = frozenset()
        self._replied_ns = 0  # when the last control message (not an announce) was routed
        self._heard = False  # a poll read a request from another session (not our own echo)
        self._heard_ns = 0  # when a poll last did
        self._received_keys: dict[type, str] = {}  # counter name per request class
        self._keepalives: list[ShmLeaseKeepalive] = []  # read in this poll, not yet told
        self._owner = 0  # the poll thread's ident, once it runs
        self._routes: tuple[PublicationQueue, PublicationQueue] | None = None
        self._thread = threading.Thread(target=self._run, name="control-gateway", daemon=True)

    # ---------------------------------------------------------------- any thread

    def start(self, timeout: float = 10.0) -> None:
        """Start the poll thread and wait until every publication/subscription is open."""
        self._thread.start()
        if not self._ready.wait(timeout):
            self._closing = True
            raise GatewayError(f"Aeron did not come up within {timeout} s in {self.aeron_dir}")
        if self._startup_error is not None:
            self._thread.join(timeout)
            raise GatewayError(f"cannot open Aeron in {self.aeron_dir}: {self._startup_error}")

    def bind(self, target: Target, *, backlog: Callable[[], int] | None = None) -> None:
        """Start polling the control stream and telling ``target`` what arrives.

        Until then requests wait in the subscription's log (the actors are not up yet), while
        outgoing messages already flow. ``backlog`` reports how many told messages ``target``
        has not handled yet; while it is at or above ``max_backlog`` the gateway stops polling.
        """
        if backlog is not None:
            self._backlog = backlog
        self._target = target
        self._wake.set()

    def send(self, message: messages.SbeMessage) -> None:
        """The ``Outbox`` entry point: never blocks, keeps the order of calls, wakes the
        poll thread so the message leaves now rather than after its idle park."""
        if self._stopped.is_set():
            self._closed_send(message)
            return
        self._outgoing.append(message)
        self._route_now()

    def send_all(self, batch: Iterable[messages.SbeMessage]) -> None:
        """``send`` for many messages decided in one step: one queueing, one wake-up."""
        if self._stopped.is_set():
            for message in batch:
                self._closed_send(message)
            return
        self._outgoing.extend(batch)
        self._route_now()

    def _route_now(self) -> None:
        """From the poll thread itself (the DriverActor runs there) offer at once, in order,
        before the rest of the step that sent it; from any other thread, wake the poll thread."""
        routes = self._routes
        if routes is None or threading.get_ident() != self._owner:
            self._wake.set()
            return
        self._route_outgoing(*routes, time.monotonic_ns())

    def _closed_send(self, message: messages.SbeMessage) -> None:
        self._counters.inc(f"{COUNTER_PUBLISH_FAILED}.{type(message).__name__}.closed")
        _log.warning("gateway closed: %s not sent", type(message).__name__)

    def counters(self) -> Mapping[str, int]:
        """Thread-safe snapshot of the transport counters (``gateway.*``)."""
        return self._counters.snapshot()

    @property
    def running(self) -> bool:
        return self._ready.is_set() and not self._stopped.is_set()

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """True once the poll thread has closed everything (after ``close`` or a fatal loss)."""
        return self._stopped.wait(timeout)

    def close(self, flush_timeout: float = 2.0) -> None:
        """Flush what is queued (bounded by ``flush_timeout``), then close from the owner."""
        self._flush_deadline_ns = time.monotonic_ns() + int(flush_timeout * 1e9)
        self._closing = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(flush_timeout + self._driver_timeout_ms / 1000 + 5.0)
        self._stopped.set()

    # ---------------------------------------------------------------- poll thread

    def _run(self) -> None:
        _set_timer_slack(GATEWAY_TIMER_SLACK_NS)
        try:
            aeron, sub, pubs = self._open()
        except Exception as exc:  # no driver, bad channel: reported by start()
            self._startup_error = exc
            self.host.release()
            self.clock.release()
            self._stopped.set()
            self._ready.set()
            return
        control_q, announce_q = self._queues(pubs)
        self._routes = (control_q, announce_q)
        self._owner = threading.get_ident()
        self._ready.set()
        try:
            self._loop(aeron, sub, control_q, announce_q)
        except Exception as exc:
            self._fatal(f"Aeron failed: {type(exc).__name__}: {exc}")
        finally:
            self.host.release()
            self.clock.release()
            for resource in (*pubs.values(), sub, aeron):
                try:
                    resource.close()
                except Exception as exc:
                    _log.debug("closing %r: %s", resource, exc)
            self._stopped.set()
            self._discard_unsent()

    def _discard_unsent(self) -> None:
        """Count what was sent but never routed (close deadline passed, or Aeron was lost)."""
        while self._outgoing:
            name = type(self._outgoing.popleft()).__name__
            self._counters.inc(COUNTER_PUBLISH_FAILED)
            self._counters.inc(f"{COUNTER_PUBLISH_FAILED}.{name}.closed")
            _log.warning("gateway closed: %s not sent", name)

    def _open(self) -> tuple[Any, Any, dict[str, Any]]:
        ch = self.channels
        context = pyaeron.Context(
            dir=self.aeron_dir,
            client_name="tensorpool-driver",
            driver_timeout_ms=self._driver_timeout_ms,
            error_handler=self._on_aeron_error,
        )
        aeron = pyaeron.Aeron(context=context)
        try:
            sub = aeron.add_subscription(ch.control_channel, ch.control_stream_id)
            control = aeron.add_exclusive_publication(ch.control_channel, ch.control_stream_id)
            pubs: dict[str, Any] = {"control": control}
            if not ch.announce_shares_control:
                pubs["announce"] = aeron.add_exclusive_publication(
                    ch.announce_channel, ch.announce_stream_id
                )
            # The spec has the driver open the QoS publication although it never writes to it.
            pubs["qos"] = aeron.add_exclusive_publication(ch.qos_channel, ch.qos_stream_id)
        except BaseException:
            aeron.close()
            raise
        self._own_sessions = frozenset(
            p.session_id for name, p in pubs.items() if name in {"control", "announce"}
        )
        return aeron, sub, pubs

    def _queues(self, pubs: dict[str, Any]) -> tuple[PublicationQueue, PublicationQueue]:
        def queue(label: str) -> PublicationQueue:
            return PublicationQueue(
                label,
                pubs[label],
                soft_deadline_ns=self._soft_deadline_ns,
                counters=self._counters,
                rate_log=self._rate_log,
            )

        control_q = queue("control")
        return control_q, (queue("announce") if "announce" in pubs else control_q)

    def _loop(
        self, aeron: Any, sub: Any, control_q: PublicationQueue, announce_q: PublicationQueue
    ) -> None:
        queues = (control_q,) if announce_q is control_q else (control_q, announce_q)
        wake = self._wake
        while True:
            wake.clear()  # before looking for work: a later send() makes the park return
            self._log_aeron_errors()
            if aeron.is_closed:
                self._fatal("lost the Aeron media driver (client closed: driver timeout)")
                return
            work, reading = self._read(sub, control_q)
            # After the read: a lease check then finds every keepalive read before it queued
            # ahead of it in the driver's mailbox.
            work += self.clock.run_due(time.monotonic_ns())
            work += self.host.run_ready()
            now = time.monotonic_ns()
            work += self._route_outgoing(control_q, announce_q, now)
            for q in queues:
                work += q.drain(now)
            # A send from another thread may have landed after this turn's routing: it is
            # part of what close() must flush, so it keeps the loop going one more turn.
            flushed = not self._outgoing and not any(len(q) for q in queues)
            if self._closing and (flushed or now >= self._flush_deadline_ns):
                for q in queues:
                    if q.drop_all("gateway closed before it could be sent"):
                        _log.warning("close: flush deadline passed with messages queued")
                return
            if not work:
                self._idle(sub, wake, poll=reading)

    def _read(self, sub: Any, control_q: PublicationQueue) -> tuple[int, bool]:
        """Read requests unless the driver's mailbox or our outgoing queue is full (then read
        back only our own messages); returns the work done and whether requests are read."""
        if self._target is None or self._closing:
            return 0, False
        if self._backlog() < self._max_backlog and len(control_q) < self._max_outgoing:
            return self._poll(sub), True
        self._counters.inc(COUNTER_THROTTLED)
        return self._skip_own(sub), False

    def _idle(self, sub: Any, wake: Waker, *, poll: bool) -> bool:
        """Park until woken, a timer is due or a request arrives; True if there is work.

        The cheapest loop the thread can idle in (a C-level timed lock wait and one poll per
        park), so short parks stay affordable; a park never runs past the clock's next
        deadline, and every IDLE_TURN_NS it returns anyway, for the outer loop's checks (media
        driver alive, Aeron errors, flush).
        """
        now = time.monotonic_ns()
        until = now + IDLE_TURN_NS
        intake, handler, clock = self.intake, self._on_fragment, time.monotonic_ns
        next_deadline = self.clock.next_deadline
        poll_sub = sub.poll
        while True:
            park_ns = self._park_ns(now)
            deadline = next_deadline()
            if deadline is not None:
                if deadline <= now:
                    return True
                park_ns = min(park_ns, deadline - now)
            if wake.wait(park_ns / 1e9):
                return False
            now = clock()
            if poll:
                if poll_sub(handler, FRAGMENT_LIMIT):
                    self._note_heard(now)
                    self._tell_keepalives()
                    return True  # the outer loop's poll moves the horizon past what was told
                # Nothing was told: the horizon moves to this poll's start. The driver's
                # want() wakes this thread (the wait returns True), so the answer it waits for
                # comes from the outer loop's poll.
                intake.read_ns = now
            if now >= until:
                return False

    def _park_ns(self, now_ns: int) -> int:
        """How long to park at ``now_ns`` (see HOT_PARK_NS)."""
        quiet_ns = now_ns - self._replied_ns
        if quiet_ns < HOT_WINDOW_NS:
            park = HOT_PARK_NS
        elif quiet_ns < WARM_WINDOW_NS:
            park = WARM_PARK_NS
        elif quiet_ns < COOL_WINDOW_NS:
            park = COOL_PARK_NS
        elif now_ns - self._heard_ns < HEARD_WINDOW_NS:
            park = HEARD_PARK_NS
        else:
            park = self._max_park_ns
        return min(park, self._max_park_ns)

    def _note_heard(self, now_ns: int) -> None:
        """After a poll: if it read another session's request, a client is around."""
        if self._heard:
            self._heard = False
            self._heard_ns = now_ns

    def _poll(self, sub: Any) -> int:
        """Read up to FRAGMENT_LIMIT requests; having drained the log, move the horizon.

        A poll that returns fewer fragments than it may has reached the end of the log, so
        everything published before it started has been told to the target: the intake
        horizon moves to that start (``actors/runtime/intake.py``), and if the driver is waiting for
        it, ``IntakeCaughtUp`` follows what was told.
        """
        started_ns = time.monotonic_ns()
        read: int = sub.poll(self._on_fragment, FRAGMENT_LIMIT)
        self._note_heard(started_ns)
        self._tell_keepalives()
        if read < FRAGMENT_LIMIT and self.intake.caught_up(started_ns):
            self._tell(IntakeCaughtUp(started_ns))
        return read

    def _skip_own(self, sub: Any) -> int:
        """Consume only our own messages while the driver's mailbox is full.

        Our control publication shares its stream with this subscription, and on IPC a
        publication may run only a window ahead of its slowest subscriber: left unread, our
        own image would back-pressure every reply we send while the flood waits in the log.
        The other sessions' images stay unread (that is the back-pressure on their senders).
        """
        skipped = 0
        for session_id in self._own_sessions:
            image = sub.image_by_session_id(session_id)
            if image is not None:
                skipped += image.poll(_ignore_fragment, OWN_SKIP_LIMIT)
        return skipped

    def _tell(self, message: object) -> None:
        """Tell the target; a target that raises is counted, never lets Aeron work stop."""
        target = self._target
        if target is None:
            return
        try:
            target.tell(message)
        except Exception as exc:
            self._counters.inc(COUNTER_HANDLER_ERRORS)
            self._rate_log.log(logging.ERROR, "handler", "telling the driver failed: %r", exc)

    def _route_outgoing(
        self, control_q: PublicationQueue, announce_q: PublicationQueue, now_ns: int
    ) -> int:
        """Encode queued messages in call order; offer directly when nothing waits ahead."""
        moved = 0
        while self._outgoing:
            message = self._outgoing.popleft()
            moved += 1
            name = type(message).__name__
            try:
                data = messages.encode(message)
            except Exception as exc:
                self._counters.inc(COUNTER_PUBLISH_FAILED)
                self._counters.inc(f"{COUNTER_PUBLISH_FAILED}.{name}.encode")
                _log.error("cannot encode %s (%s): %r", name, exc, message)
                continue
            is_announce = isinstance(message, messages.ShmPoolAnnounce)
            if not is_announce:
                self._replied_ns = now_ns
            q = announce_q if is_announce else control_q
            q.push(data, message, soft=is_announce, now_ns=now_ns)
            if len(q) == 1:
                q.drain(now_ns)
        return moved

    def _on_fragment(self, buf: Any, header: Any) -> None:
        """Aeron fragment handler: decode and tell; never raises (a raise loses the batch)."""
        try:
            if header.session_id in self._own_sessions:
                self._counters.inc(COUNTER_IGNORED)
                return
            self._heard = True
            self._dispatch(bytes(buf))
        except Exception as exc:
            self._counters.inc(COUNTER_HANDLER_ERRORS)
            self._rate_log.log(logging.ERROR, "handler", "control fragment handler failed: %r", exc)

    def _dispatch(self, data: bytes) -> None:
        if len(data) >= HEADER.size:
            _, template_id, schema_id, _ = HEADER.unpack_from(data)
            if (schema_id, template_id) not in HANDLED:
                self._counters.inc(COUNTER_IGNORED)
                return
        try:
            message: object = messages.decode(data)
        except messages.UnknownMessage:
            self._counters.inc(COUNTER_IGNORED)
            return
        except messages.UnsupportedVersion as exc:
            self._count_decode_error(exc, len(data))
            if (exc.schema_id, exc.template_id) != ATTACH_REQUEST or exc.correlation_id is None:
                return
            message = AttachVersionUnsupported(correlation_id=exc.correlation_id)
        except messages.DecodeError as exc:
            self._count_decode_error(exc, len(data))
            return
        target = self._target
        if target is None:  # only while closing: the actors are going away
            return
        kind = type(message)
        key = self._received_keys.get(kind)
        if key is None:
            key = self._received_keys[kind] = f"{COUNTER_RECEIVED}.{kind.__name__}"
        self._counters.inc(key)
        if kind is ShmLeaseKeepalive:
            self._keepalives.append(message)  # type: ignore[arg-type]
            return
        self._tell_keepalives()  # the keepalives read before it go first
        target.tell(message)

    def _tell_keepalives(self) -> None:
        """Tell the keepalives read since the last request or poll: one message for all."""
        batch = self._keepalives
        if not batch:
            return
        self._keepalives = []
        self._tell(batch[0] if len(batch) == 1 else Keepalives(tuple(batch)))

    def _count_decode_error(self, exc: messages.DecodeError, size: int) -> None:
        kind = type(exc).__name__
        self._counters.inc(f"{COUNTER_DECODE_ERRORS}.{kind}")
        self._rate_log.log(
            logging.WARNING, f"decode:{kind}", "dropped a %d-byte control message: %s", size, exc
        )

    def _on_aeron_error(self, code: int, message: str) -> None:
        """Aeron's error handler: runs on the client conductor thread, so it only records."""
        self._aeron_errors.append((code, message))

    def _log_aeron_errors(self) -> None:
        while self._aeron_errors:
            code, message = self._aeron_errors.popleft()
            self._counters.inc(COUNTER_AERON_ERRORS)
            self._rate_log.log(logging.ERROR, f"aeron:{code}", "Aeron error %d: %s", code, message)

    def _fatal(self, reason: str) -> None:
        if self.fatal_reason is not None:
            return
        self.fatal_reason = reason
        _log.critical("%s", reason)
        if self._on_fatal is not None:
            try:
                self._on_fatal(reason)
            except Exception:
                _log.exception("fatal-error callback failed")


def _ignore_fragment(_buf: Any, _header: Any) -> None:
    """Our own traffic, read back from the shared control stream: nothing to do."""


def _no_backlog() -> int:
    return 0


class Waker:
    """A wake-up flag one thread parks on and any thread sets, without allocating.

    A plain lock held while no wake is pending: ``set`` releases it (a second ``set`` finds
    it released already), ``wait`` takes it back with a timeout (a C-level wait, where
    ``threading.Event.wait`` runs a Python condition and allocates a lock per call).
    """

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def set(self) -> None:
        if not self._lock.locked():
            return  # a wake is pending already
        with contextlib.suppress(RuntimeError):  # another thread set it just now
            self._lock.release()

    def clear(self) -> None:
        self._lock.acquire(blocking=False)

    def wait(self, timeout_s: float) -> bool:
        """True if woken (the wake is consumed), False after ``timeout_s``."""
        return self._lock.acquire(timeout=timeout_s)


def _set_timer_slack(ns: int) -> None:
    """Make this thread's short parks precise (Linux only; elsewhere a no-op)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0)
    except (OSError, AttributeError) as exc:
        _log.debug("cannot set the timer slack: %s", exc)
