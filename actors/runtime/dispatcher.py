"""A pykka actor whose mailbox is served by a small shared thread pool.

One ``ThreadingActor`` per lease would mean 10,000 OS threads on a 2-core host; a
``PooledActor`` costs a deque, a lock and a flag instead, and is otherwise an ordinary pykka
actor (``ActorRef``, ``ask``, ``proxy``, ``ActorRegistry`` work unchanged). The measurements
and the design are in ``notes/lease-actor-scheduling.md`` (§1, §2, §5).

How it fits pykka 4.5 (pinned in pyproject.toml because this module relies on internals):

* ``_create_actor_inbox`` gives a ``_Mailbox`` whose ``put`` is where every tell, ask, proxy
  call and stop enters; it queues the actor on its ``Dispatcher`` unless it is already queued
  or running. Because an actor is queued only while its ``scheduled`` flag is clear, at most
  one turn of it runs at a time and its messages are handled in FIFO order.
* ``_start_actor_loop`` queues the first turn, which runs pykka's ``_actor_loop_setup``
  (``on_start``) before any message.
* A turn handles at most ``throughput`` messages with a copy of the body of pykka's
  ``_actor_loop_running`` (``_handle_one``; keep it in step with pykka when upgrading), then
  gives the worker back. Once the actor is stopped the turn runs pykka's
  ``_actor_loop_teardown``, which answers every pending ask with ``ActorDeadError``.

Handlers must never block (no blocking ``ask`` of another pooled actor, no sleeping, no
synchronous I/O): ``workers`` blocked handlers stall every pooled actor.
"""

from __future__ import annotations

import itertools
import logging
import queue
import sys
import threading
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import pykka

if TYPE_CHECKING:
    from collections.abc import Callable

    from pykka._actor import ActorInbox
    from pykka._envelope import Envelope

__all__ = [
    "Dispatcher",
    "DispatcherShutdownError",
    "HostedDispatcher",
    "PooledActor",
    "Scheduler",
    "default_dispatcher",
]

logger = logging.getLogger(__name__)
pykka_logger = logging.getLogger("pykka")


class DispatcherShutdownError(RuntimeError):
    """A message was sent to a pooled actor whose dispatcher has been shut down."""


class Scheduler(Protocol):
    """What a pooled actor needs from whatever runs its turns."""

    @property
    def is_shut_down(self) -> bool: ...

    def schedule(self, actor: PooledActor) -> None: ...

    def shutdown(self, timeout: float | None = None) -> None: ...


class Dispatcher:
    """N daemon worker threads taking actors with mail from one run queue.

    Two workers are enough on CPython: the GIL serialises handlers, and the second worker
    keeps the pool alive while one handler waits on a lock. ``throughput`` bounds how many
    messages one actor handles before the worker moves on (fairness between actors).
    """

    def __init__(self, workers: int = 2, throughput: int = 16, name: str = "pooled") -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if throughput < 1:
            raise ValueError(f"throughput must be >= 1, got {throughput}")
        self.workers = workers
        self.throughput = throughput
        self._ready: queue.SimpleQueue[PooledActor | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._shut_down = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def __repr__(self) -> str:
        return f"Dispatcher(workers={self.workers}, throughput={self.throughput})"

    @property
    def is_shut_down(self) -> bool:
        return self._shut_down

    def schedule(self, actor: PooledActor) -> None:
        """Queue one turn of ``actor``; called by its mailbox, never twice concurrently."""
        if self._shut_down:
            raise DispatcherShutdownError(f"{self!r} is shut down; cannot serve {actor}")
        self._ready.put(actor)

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop the workers after the turns already queued; idempotent.

        Stop the pool's actors first (``ActorRegistry.stop_all()`` or ``ref.stop()``): once
        the pool is shut down, their pending messages are never handled.
        """
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
        for _ in self._threads:
            self._ready.put(None)
        current = threading.current_thread()
        for thread in self._threads:
            if thread is not current:
                thread.join(timeout)

    def _work(self) -> None:
        while (actor := self._ready.get()) is not None:
            try:
                actor._pooled_turn(self.throughput)  # noqa: SLF001 - the pool drives its actors
            except BaseException:
                logger.exception("pool worker survived an error while serving %s", actor)


class HostedDispatcher:
    """Runs pooled actors' turns on a thread that owns another loop: no thread of their own.

    The host (the control gateway's poll thread) calls ``run_ready`` once per loop turn and
    ``wake`` is how ``schedule`` tells it there is work. So a request the gateway reads is
    decided, and its reply encoded and offered, on that one thread: no hand-off, no wake-up
    of another thread, no wait for the interpreter's switch interval. When the host's loop
    ends (``release``), a one-worker ``Dispatcher`` takes over, so the actors can still stop.
    """

    def __init__(self, *, throughput: int = 64, name: str = "hosted") -> None:
        self.throughput = throughput
        self._name = name
        self._ready: deque[PooledActor] = deque()
        self._lock = threading.Lock()
        self._wake: Callable[[], None] = _no_wake
        self._fallback: Dispatcher | None = None
        self._shut_down = False

    def __repr__(self) -> str:
        return f"HostedDispatcher({self._name}, throughput={self.throughput})"

    @property
    def is_shut_down(self) -> bool:
        return self._shut_down

    def bind(self, wake: Callable[[], None]) -> None:
        """The host's wake-up; called by ``schedule`` from any thread."""
        self._wake = wake

    def schedule(self, actor: PooledActor) -> None:
        with self._lock:
            if self._shut_down:
                raise DispatcherShutdownError(f"{self!r} is shut down; cannot serve {actor}")
            fallback = self._fallback
            if fallback is None:
                self._ready.append(actor)
        if fallback is not None:
            fallback.schedule(actor)
        else:
            self._wake()

    def has_ready(self) -> bool:
        return bool(self._ready)

    def run_ready(self) -> int:
        """Host thread: one turn of each actor ready now; returns how many turns ran."""
        ready = self._ready
        turns = len(ready)
        for _ in range(turns):
            actor = ready.popleft()
            try:
                actor._pooled_turn(self.throughput)  # noqa: SLF001 - the host drives its actors
            except BaseException:
                logger.exception("host survived an error while serving %s", actor)
        return turns

    def release(self) -> None:
        """The host's loop ends: a thread of its own serves what is left and what comes."""
        with self._lock:
            if self._fallback is not None or self._shut_down:
                return
            self._fallback = Dispatcher(workers=1, throughput=self.throughput, name=self._name)
            left, self._ready = list(self._ready), deque()
        for actor in left:
            self._fallback.schedule(actor)

    def shutdown(self, timeout: float | None = None) -> None:
        with self._lock:
            self._shut_down = True
            fallback = self._fallback
        if fallback is not None:
            fallback.shutdown(timeout)


def _no_wake() -> None:
    """Until a host binds: its loop runs ``run_ready`` on every turn anyway."""


_default: Dispatcher | None = None
_default_lock = threading.Lock()


def default_dispatcher() -> Dispatcher:
    """The shared pool (2 workers, throughput 16), created on first use.

    If it has been shut down, the next call creates a fresh one.
    """
    global _default  # noqa: PLW0603 - one lazily created pool per process
    with _default_lock:
        if _default is None or _default.is_shut_down:
            _default = Dispatcher(name="pooled-default")
        return _default


class _Mailbox:
    """pykka's ``ActorInbox`` protocol (put/get/empty) over a deque that schedules its actor."""

    __slots__ = ("actor", "lock", "messages", "scheduled", "started")

    def __init__(self, actor: PooledActor) -> None:
        self.messages: deque[Envelope[Any]] = deque()
        self.lock = threading.Lock()
        self.actor: PooledActor | None = actor  # None once torn down (breaks the cycle)
        self.scheduled = False  # a turn is queued or running
        self.started = False  # _start_actor_loop has run

    def put(self, envelope: Envelope[Any], /) -> None:
        with self.lock:
            actor = self.actor
            if actor is None:  # torn down: a tell that raced the stop
                raise pykka.ActorDeadError("the actor has stopped")
            self.messages.append(envelope)
            if self.scheduled or not self.started:
                return
            self.scheduled = True
        actor._pooled_dispatcher.schedule(actor)  # noqa: SLF001

    def get(self) -> Envelope[Any]:
        with self.lock:
            return self.messages.popleft()

    def empty(self) -> bool:
        return not self.messages

    def __len__(self) -> int:
        return len(self.messages)


class _StopFlag(threading.Event):
    """pykka's ``actor_stopped`` without a Condition until someone waits on it.

    A ``threading.Event`` is a Condition, a lock, a deque and two bound methods: five objects
    the cyclic GC tracks, for each of tens of thousands of lease actors, whose flag is only
    ever set and read. A waiter (rare: tests, ``ActorRef.stop`` does not) gets a real Event.
    """

    def __init__(self) -> None:  # no super().__init__(): that is what this saves
        self._flag = False  # what Event.is_set returns
        self._waiter: threading.Event | None = None

    def set(self) -> None:
        with _STOP_FLAGS_LOCK:
            self._flag = True
            waiter = self._waiter
        if waiter is not None:
            waiter.set()

    def clear(self) -> None:
        with _STOP_FLAGS_LOCK:
            self._flag = False
            self._waiter = None

    def wait(self, timeout: float | None = None) -> bool:
        with _STOP_FLAGS_LOCK:
            if self._flag:
                return True
            if self._waiter is None:
                self._waiter = threading.Event()
            waiter = self._waiter
        return waiter.wait(timeout)


_STOP_FLAGS_LOCK = threading.Lock()
# Pooled actors' URNs: this process's random UUID prefix and a counter in the last group, so
# they are unique in the process (what pykka's registry needs) without a uuid4() (a system
# call and a UUID object) per actor.
_URN_PREFIX = uuid.uuid4().urn[:-12]
_urn_serials = itertools.count(1)


class PooledActor(pykka.Actor):
    """A pykka actor served by a ``Dispatcher`` instead of a thread of its own.

    Set the class attribute ``dispatcher`` to use a specific pool; None means the shared
    ``default_dispatcher()``, read when the actor starts. Hooks (``on_start``, ``on_receive``,
    ``on_stop``, ``on_failure``) run on a pool worker, one at a time per actor, and follow
    pykka's rules: an exception in an ask goes back to the caller; in a tell it calls
    ``on_failure`` (not ``on_stop``) and stops the actor.
    """

    dispatcher: ClassVar[Scheduler | None] = None
    # Whether ``start`` puts the actor in pykka's ``ActorRegistry``. The registry is one list
    # and removing from it is O(n), so an actor type with tens of thousands of short-lived
    # instances (leases) opts out; its owner keeps its refs and stops it.
    registered: ClassVar[bool] = True

    _pooled_dispatcher: Scheduler
    _mailbox: _Mailbox
    _setup_pending: bool = True

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        """pykka 4.5's ``Actor.__init__`` (keep in step), with a cheaper URN and stop flag."""
        self.actor_urn = f"{_URN_PREFIX}{next(_urn_serials) & 0xFFFF_FFFF_FFFF:012x}"
        self.actor_inbox = self._create_actor_inbox()
        self.actor_stopped = _StopFlag()
        self._actor_ref = pykka.ActorRef(self)

    @classmethod
    def start(cls, *args: Any, **kwargs: Any) -> pykka.ActorRef[Any]:
        """pykka's ``Actor.start``, without the registry when ``registered`` is False."""
        if cls.registered:
            return super().start(*args, **kwargs)
        actor = cls(*args, **kwargs)
        actor._start_actor_loop()  # what Actor.start does after registering
        return actor.actor_ref

    def stop_after_this_message(self) -> None:
        """Stop once the message being handled is done, without queueing a stop message.

        pykka's ``stop()`` from inside an actor queues a stop and costs another turn; an actor
        that knows it is finished (a lease that ended) stops in this turn: ``on_stop`` runs
        now, and the turn then answers whatever else is queued with ``ActorDeadError``.
        """
        self._stop()

    @staticmethod
    def _create_future() -> pykka.Future[Any]:
        return pykka.ThreadingFuture()

    # pykka declares this a staticmethod but calls it as self._create_actor_inbox(); an
    # instance method lets the mailbox reach its actor.
    def _create_actor_inbox(self) -> ActorInbox:  # type: ignore[override]
        self._mailbox = _Mailbox(self)
        return self._mailbox

    def _start_actor_loop(self) -> None:
        self._pooled_dispatcher = type(self).dispatcher or default_dispatcher()
        if self._pooled_dispatcher.is_shut_down:
            # Actor.start registered us already: undo it so nothing waits on a dead pool.
            pykka.ActorRegistry.unregister(self.actor_ref)
            self.actor_stopped.set()
            raise DispatcherShutdownError(f"{self._pooled_dispatcher!r} is shut down")
        mailbox = self._mailbox
        with mailbox.lock:
            mailbox.started = True
            mailbox.scheduled = True
        self._pooled_dispatcher.schedule(self)

    def _pooled_turn(self, budget: int) -> None:
        """Run setup if pending, then up to ``budget`` messages; requeue if mail is left."""
        mailbox = self._mailbox
        stopped = self.actor_stopped
        if self._setup_pending:
            self._setup_pending = False
            self._actor_loop_setup()
        handled = 0
        while handled < budget and not stopped.is_set():
            with mailbox.lock:
                if not mailbox.messages:
                    break
                envelope = mailbox.messages.popleft()
            self._handle_one(envelope)
            handled += 1
        if stopped.is_set():
            self._actor_loop_teardown()
            with mailbox.lock:
                # The actor and its mailbox hold each other: let go, so reference counting
                # frees a stopped actor at once instead of the cyclic GC (whose full passes
                # over tens of thousands of lease actors stall every thread for milliseconds).
                mailbox.actor = None
                mailbox.scheduled = False
                left = list(mailbox.messages)
                mailbox.messages.clear()
            for envelope in left:  # raced the teardown: answered like pykka's teardown does
                if envelope.reply_to is not None:
                    envelope.reply_to.set_exception(
                        exc_info=(
                            pykka.ActorDeadError,
                            pykka.ActorDeadError(f"{self} stopped"),
                            None,
                        )
                    )
            return
        with mailbox.lock:
            again = mailbox.scheduled = bool(mailbox.messages)
        if again:
            self._pooled_dispatcher.schedule(self)

    def _handle_one(self, envelope: Envelope[Any]) -> None:
        """One iteration of pykka 4.5's ``Actor._actor_loop_running``, rule for rule."""
        try:
            response = self._handle_receive(envelope.message)
            if envelope.reply_to is not None:
                envelope.reply_to.set(response)
        except Exception:
            if envelope.reply_to is not None:
                pykka_logger.info(
                    "Exception returned from %s to caller:", self, exc_info=sys.exc_info()
                )
                envelope.reply_to.set_exception()
            else:
                self._handle_failure(*sys.exc_info())
                try:
                    self.on_failure(*sys.exc_info())
                except Exception:
                    self._handle_failure(*sys.exc_info())
        except BaseException:
            pykka_logger.debug("%r in %s. Stopping all actors.", sys.exc_info()[1], self)
            self._stop()
            # pykka blocks here; a blocking stop_all on a pool worker can starve the pool
            # (with one worker it deadlocks), so the stops are only sent.
            pykka.ActorRegistry.stop_all(block=False)
