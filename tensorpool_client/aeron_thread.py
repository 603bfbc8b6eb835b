"""The thread that owns a client's control-plane Aeron objects, and the handles others use.

A fragment handler must neither re-poll nor close anything, and a subscription is polled by one
thread at a time (notes/pyaeron-and-pykka.md). Control-plane work runs here, between polls: user
threads submit commands through a queue and wait on futures, offers go through per-publication
outboxes that are retried on later loop turns, and received fragments are copied out of the
handler at once.

The data plane does not go through this thread: ``direct_publication`` and
``direct_subscription`` hand out Aeron objects that the caller's own thread offers on and polls
(``tensorpool_client.direct``), so a frame costs no thread hand-off. This thread only creates
them and, at shutdown, closes them under their guard so no caller is inside a call meanwhile.

Idle cost: the loop does not spin or take short fixed naps. After a turn with work it parks
for ``MIN_PARK_S``, doubling each idle turn up to ``MAX_PARK_S``; anything queued for it (a
command, an offer, a close) sets ``_wake`` and ends the park at once, and while a request
awaits its response (``expect_response``) the park stays at ``MIN_PARK_S``.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import pyaeron

from tensorpool_client.aeron_connect import connect
from tensorpool_client.command_queue import CommandQueue
from tensorpool_client.direct import DirectPublication, DirectSubscription
from tensorpool_client.errors import ClientClosed

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)

FRAGMENT_LIMIT: Final = 32
DEFAULT_QUEUE_CAPACITY: Final = 4096
MIN_PARK_S: Final = 0.00005
MAX_PARK_S: Final = 0.05
"""Longest idle park: announces, revokes and keepalive timers are seen within 50 ms, and an
idle loop wakes 20 times a second (a timer wake-up costs tens of microseconds on a VM)."""


@dataclass(slots=True)
class _Offer:
    data: bytes
    future: Future[bool]
    deadline_ns: int
    drop_if_not_connected: bool


@dataclass(slots=True)
class _Pub:
    publication: Any
    outbox: collections.deque[_Offer] = field(default_factory=collections.deque)
    closed: bool = False


class PublicationHandle:
    """A publication living on the Aeron thread; ``offer`` is callable from any thread."""

    def __init__(self, owner: AeronThread, pub: _Pub, channel: str, stream_id: int) -> None:
        self._owner = owner
        self._pub = pub
        self.channel = channel
        self.stream_id = stream_id

    def offer(
        self, data: bytes, *, timeout: float = 1.0, drop_if_not_connected: bool = False
    ) -> bool:
        """Offer and wait: True once appended, False if not delivered within ``timeout``."""
        return self.offer_nowait(
            data, timeout=timeout, drop_if_not_connected=drop_if_not_connected
        ).result(timeout + 1.0)

    def offer_nowait(
        self, data: bytes, *, timeout: float = 1.0, drop_if_not_connected: bool = False
    ) -> Future[bool]:
        """Queue ``data``; the future says whether it was appended (safe on the Aeron thread)."""
        fut: Future[bool] = Future()
        if self._pub.closed or not self._owner.running:
            fut.set_exception(ClientClosed("publication or client closed"))
            return fut
        deadline = time.monotonic_ns() + int(timeout * 1e9)
        self._pub.outbox.append(_Offer(bytes(data), fut, deadline, drop_if_not_connected))
        if self._pub.closed:  # closed between the check and the append: nobody flushes it now
            _fail_outbox(self._pub)
        self._owner.wake()
        return fut

    def is_connected(self, timeout: float = 5.0) -> bool:
        """Whether at least one subscriber is connected (asked on the Aeron thread)."""
        return bool(self._owner.call(lambda _a: self._pub.publication.is_connected, timeout))

    def close(self, timeout: float = 5.0) -> None:
        """Close the publication on the Aeron thread (idempotent)."""
        if self._pub.closed or not self._owner.running:
            self._pub.closed = True
            return
        self._owner.call(lambda _a: self._owner.close_publication(self._pub), timeout)


class SubscriptionHandle:
    """A subscription polled by the Aeron thread; fragments wait here as private bytes."""

    def __init__(self, owner: AeronThread, channel: str, stream_id: int, capacity: int) -> None:
        self._owner = owner
        self.channel = channel
        self.stream_id = stream_id
        self.subscription: Any = None
        self.dropped = 0
        """Fragments discarded because the reader fell more than ``capacity`` behind."""
        self._items: collections.deque[bytes] = collections.deque()
        self._capacity = capacity
        self._cond = threading.Condition()
        self.closed = False

    def deliver(self, data: bytes) -> None:
        """Called on the Aeron thread for each fragment (oldest dropped when full)."""
        with self._cond:
            if len(self._items) >= self._capacity:
                self._items.popleft()
                self.dropped += 1
            self._items.append(data)
            self._cond.notify_all()

    def poll(self, timeout: float = 0.0) -> bytes | None:
        """The oldest fragment, waiting up to ``timeout`` seconds; None if none came."""
        with self._cond:
            if not self._items and timeout > 0:
                self._cond.wait_for(lambda: bool(self._items) or self.closed, timeout)
            return self._items.popleft() if self._items else None

    def close(self, timeout: float = 5.0) -> None:
        """Close the subscription on the Aeron thread (idempotent)."""
        if not self.closed and self._owner.running:
            self._owner.call(lambda _a: self._owner.close_subscription(self), timeout)
        with self._cond:
            self.closed = True
            self._cond.notify_all()


class AeronThread:
    """Owns ``pyaeron.Aeron(dir=...)`` and every publication/subscription made through it."""

    def __init__(self, aeron_dir: str, *, name: str = "tensorpool-client") -> None:
        self._aeron_dir = aeron_dir
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._commands = CommandQueue()
        self._pubs: list[_Pub] = []
        self._subs: list[tuple[Any, Callable[[Any, Any], None]]] = []
        self._duties: list[Callable[[int], int]] = []
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._expecting = 0
        """Requests waiting for a response: while > 0 the loop parks only ``MIN_PARK_S``."""
        self._expecting_lock = threading.Lock()
        self._direct: list[DirectPublication | DirectSubscription] = []
        self._finished = threading.Event()
        """Set once the thread has failed every pending command and offer on its way out."""
        self._start_error: BaseException | None = None
        self._aeron_client: Any = None
        self.handler_errors = 0
        """Exceptions raised by fragment handlers or duties (caught, logged, counted)."""

    @property
    def running(self) -> bool:
        """True between a successful start and close (or the thread's death)."""
        return self._ready.is_set() and not self._stop.is_set() and self._thread.is_alive()

    def start(self, timeout: float = 15.0) -> None:
        """Start the thread and wait until the Aeron client is connected to its media driver."""
        self._thread.start()
        if not self._ready.wait(timeout):
            self._stop.set()
            self._thread.join()
            raise ClientClosed(f"Aeron client did not start within {timeout} s")
        if self._start_error is not None:
            self._thread.join()
            raise ClientClosed(f"Aeron client failed to start: {self._start_error}")

    def close(self) -> None:
        """Stop polling, close the Aeron client on its own thread, join (idempotent)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def add_duty(self, duty: Callable[[int], int], timeout: float = 5.0) -> None:
        """Run ``duty(now_ns) -> work`` on every loop turn (timers: keepalives, activity)."""
        if self.running:
            self.call(lambda _a: self._duties.append(duty), timeout)
        else:
            self._duties.append(duty)

    def remove_duty(self, duty: Callable[[int], int], timeout: float = 5.0) -> None:
        """Stop running ``duty``; once this returns it is not running and never runs again."""
        if self.running:
            self.call(lambda _a: self._duties.remove(duty) if duty in self._duties else None,
                      timeout)
        elif duty in self._duties:
            self._duties.remove(duty)

    def wake(self) -> None:
        """End the current idle park now (work was queued for the thread)."""
        self._wake.set()

    @contextlib.contextmanager
    def expect_response(self) -> Iterator[None]:
        """While inside, poll promptly: a response to a request just sent is due soon."""
        with self._expecting_lock:  # several user threads may be waiting at once
            self._expecting += 1
        self._wake.set()
        try:
            yield
        finally:
            with self._expecting_lock:
                self._expecting -= 1

    def call[T](self, fn: Callable[[Any], T], timeout: float = 5.0) -> T:
        """Run ``fn(aeron)`` on the Aeron thread between polls and return its result."""
        if threading.current_thread() is self._thread:
            return fn(self._aeron_client)
        if not self.running:
            raise ClientClosed("client is not running")
        fut = self._commands.put(fn)
        self._wake.set()
        if self._finished.is_set():  # the thread ended between the check and the put
            self._fail_commands()
        try:
            return fut.result(timeout)  # type: ignore[return-value]
        except TimeoutError as exc:
            if not self.running:
                raise ClientClosed("client closed while a call was pending") from exc
            raise

    def publication(self, channel: str, stream_id: int, timeout: float = 5.0) -> PublicationHandle:
        """An exclusive publication owned by this thread."""

        def make(aeron: Any) -> _Pub:
            pub = _Pub(aeron.add_exclusive_publication(channel, stream_id))
            self._pubs.append(pub)
            return pub

        return PublicationHandle(self, self.call(make, timeout), channel, stream_id)

    def direct_publication(self, channel: str, stream_id: int,
                           timeout: float = 5.0) -> DirectPublication:
        """A concurrent publication that callers offer on from their own threads."""
        return self.call(lambda aeron: self._keep(DirectPublication(
            aeron.add_publication(channel, stream_id), channel, stream_id)), timeout)

    def direct_subscription(self, channel: str, stream_id: int,
                            timeout: float = 5.0) -> DirectSubscription:
        """A subscription that one caller thread at a time polls (this thread never does)."""
        return self.call(lambda aeron: self._keep(DirectSubscription(
            aeron.add_subscription(channel, stream_id), channel, stream_id)), timeout)

    def _keep[H: (DirectPublication, DirectSubscription)](self, handle: H) -> H:
        """Remember a data-plane handle so that shutdown closes it under its guard."""
        self._direct.append(handle)
        return handle

    def subscription(
        self, channel: str, stream_id: int, *, handler: Callable[[bytes], None] | None = None,
        capacity: int = DEFAULT_QUEUE_CAPACITY, timeout: float = 5.0,
    ) -> SubscriptionHandle:
        """A subscription; fragments go to ``handler`` (on this thread) or queue in the handle."""
        handle = SubscriptionHandle(self, channel, stream_id, capacity)
        sink = handler if handler is not None else handle.deliver

        def on_fragment(buf: Any, _header: Any) -> None:
            try:
                sink(bytes(buf))  # a BufferView is valid only inside the handler: copy it
            except Exception:  # raising here would lose the rest of the poll batch
                self.handler_errors += 1
                log.exception("fragment handler failed")

        def make(aeron: Any) -> None:
            handle.subscription = aeron.add_subscription(channel, stream_id)
            self._subs.append((handle.subscription, on_fragment))

        self.call(make, timeout)
        return handle

    def close_publication(self, pub: _Pub) -> None:
        """On the Aeron thread: close one publication and fail its pending offers."""
        pub.closed = True
        if pub in self._pubs:
            self._pubs.remove(pub)
        _fail_outbox(pub)
        pub.publication.close()

    def close_subscription(self, handle: SubscriptionHandle) -> None:
        """On the Aeron thread: stop polling a subscription and close it."""
        self._subs = [s for s in self._subs if s[0] is not handle.subscription]
        if handle.subscription is not None:
            handle.subscription.close()

    # ---------------------------------------------------------------- the thread itself

    def _run(self) -> None:
        try:
            self._aeron_client = connect(self._aeron_dir)
        except BaseException as exc:
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        park = MIN_PARK_S
        try:
            while not self._stop.is_set():
                self._wake.clear()  # anything queued after this sets it again
                work = self._run_commands()
                work += self._poll_subscriptions()
                work += self._flush_outboxes()
                work += self._run_duties()
                if self._aeron_client.is_closed:  # media driver lost: this client is dead
                    log.error("Aeron client closed (media driver stopped or timed out)")
                    return
                park = MIN_PARK_S if work or self._expecting else min(park * 2, MAX_PARK_S)
                if any(pub.outbox for pub in self._pubs):  # back pressure: retry soon
                    park = MIN_PARK_S
                self._wake.wait(park)
        finally:
            self._shutdown()

    def _run_commands(self) -> int:
        return self._commands.run(self._aeron_client)

    def _poll_subscriptions(self) -> int:
        work = 0
        for sub, on_fragment in list(self._subs):
            try:
                work += sub.poll(on_fragment, FRAGMENT_LIMIT)
            except Exception:
                self.handler_errors += 1
                log.exception("subscription poll failed")
        return work

    def _flush_outboxes(self) -> int:
        work = 0
        now = time.monotonic_ns()
        for pub in list(self._pubs):
            while pub.outbox:
                item = pub.outbox[0]
                try:
                    result = pub.publication.offer(item.data)
                except Exception as exc:
                    pub.outbox.popleft()
                    item.future.set_exception(exc)
                    continue
                if result is True:
                    pub.outbox.popleft()
                    item.future.set_result(True)
                    work += 1
                    continue
                give_up = now >= item.deadline_ns or (
                    result is pyaeron.NOT_CONNECTED and item.drop_if_not_connected
                )
                if not give_up:
                    break  # back pressure / admin action: retry on the next loop turn
                pub.outbox.popleft()
                item.future.set_result(False)
        return work

    def _run_duties(self) -> int:
        work = 0
        now = time.monotonic_ns()
        for duty in self._duties:
            try:
                work += duty(now)
            except Exception:
                self.handler_errors += 1
                log.exception("client duty failed")
        return work

    def _fail_commands(self) -> None:
        self._commands.fail_all(lambda: ClientClosed("client closed"))

    def _shutdown(self) -> None:
        for handle in self._direct:
            handle.close()
        self._direct.clear()
        for pub in self._pubs:
            pub.closed = True
            _fail_outbox(pub)
        self._fail_commands()
        self._finished.set()
        self._pubs.clear()
        self._subs.clear()
        try:
            self._aeron_client.close()
        except Exception:
            log.exception("closing the Aeron client failed")


def _fail_outbox(pub: _Pub) -> None:
    """Fail every queued offer of a closed publication (callable from any thread)."""
    while pub.outbox:
        try:
            item = pub.outbox.popleft()
        except IndexError:  # another thread emptied it first
            return
        if not item.future.done():
            item.future.set_exception(ClientClosed("publication closed"))
