"""Behaviour of PooledActor: guards the pykka 4.5 internals that
actors/runtime/dispatcher.py copies.

Each test waits on events, futures or asks; none sleeps. ``time.sleep(0)`` inside a handler
only yields the GIL so that a second worker entering the same actor would be caught.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import pykka
import pytest

from actors.runtime.dispatcher import (
    Dispatcher,
    DispatcherShutdownError,
    HostedDispatcher,
    PooledActor,
    default_dispatcher,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType

TIMEOUT = 10.0


@pytest.fixture(autouse=True)
def stop_all_actors() -> Iterator[None]:
    try:
        yield
    finally:
        pykka.ActorRegistry.stop_all(timeout=TIMEOUT)


@pytest.fixture
def pool() -> Iterator[Dispatcher]:
    dispatcher = Dispatcher(workers=4, throughput=3, name="test-pool")
    try:
        yield dispatcher
    finally:
        pykka.ActorRegistry.stop_all(timeout=TIMEOUT)
        dispatcher.shutdown(timeout=TIMEOUT)


class Recorder(PooledActor):
    """Records lifecycle hooks and messages; answers asks with what it was asked."""

    def __init__(self, events: list[str] | None = None) -> None:
        super().__init__()
        self.events = events if events is not None else []
        self.stopped = threading.Event()
        self.failed = threading.Event()
        self.value = 0

    def on_start(self) -> None:
        self.events.append(f"start on {threading.current_thread().name}")

    def on_stop(self) -> None:
        self.events.append("stop")
        self.stopped.set()

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.events.append(f"failure {exception_value}")
        self.failed.set()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, threading.Event):  # a gate: hold this actor until it is set
            message.wait(TIMEOUT)
            return None
        if message == "boom":
            raise ValueError("boom")
        if message == "exit":
            raise SystemExit(3)
        if message == "events":
            return list(self.events)
        self.events.append(f"msg {message}")
        return message

    def add(self, a: int, b: int) -> int:
        return a + b


def actor_of[R: Recorder](ref: pykka.ActorRef[R]) -> R:
    actor = ref._actor_weakref()
    assert actor is not None
    return actor


class TestMessaging:
    def test_tell_ask_and_proxy_work(self) -> None:
        ref = Recorder.start()
        ref.tell("hello")
        assert ref.ask("world", block=True, timeout=TIMEOUT) == "world"
        proxy = ref.proxy()
        assert proxy.add(2, 3).get(timeout=TIMEOUT) == 5
        proxy.value = 42
        assert proxy.value.get(timeout=TIMEOUT) == 42
        events = ref.ask("events", block=True, timeout=TIMEOUT)
        assert events[1:] == ["msg hello", "msg world"]

    def test_on_start_runs_on_a_pool_worker_before_the_first_message(self) -> None:
        ref = Recorder.start()
        ref.tell("first")
        events = ref.ask("events", block=True, timeout=TIMEOUT)
        assert events[0].startswith("start on pooled-default-")
        assert events[1] == "msg first"

    def test_class_dispatcher_is_used(self, pool: Dispatcher) -> None:
        class OnPool(Recorder):
            dispatcher = pool

        ref = OnPool.start()
        events = ref.ask("events", block=True, timeout=TIMEOUT)
        assert events[0].startswith("start on test-pool-")

    def test_default_dispatcher_is_shared(self) -> None:
        assert default_dispatcher() is default_dispatcher()


class Sequencer(PooledActor):
    """Checks that it is never entered twice at once and keeps what each producer sent."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = threading.Lock()
        self.overlaps = 0
        self.received: dict[int, list[int]] = {}
        self.threads: set[str] = set()

    def on_receive(self, message: Any) -> Any:
        if message == "report":
            return self.overlaps, self.received, self.threads
        if not self.inside.acquire(blocking=False):
            self.overlaps += 1
            return None
        try:
            producer, seq = message
            self.received.setdefault(producer, []).append(seq)
            self.threads.add(threading.current_thread().name)
            time.sleep(0)  # yield the GIL: another worker would enter now if it could
        finally:
            self.inside.release()
        return None


class TestOrderingAndExclusivity:
    def test_fifo_per_producer_and_no_concurrent_entry(self, pool: Dispatcher) -> None:
        class PooledSequencer(Sequencer):
            dispatcher = pool

        producers, per_producer, n_actors = 4, 200, 50
        refs = [PooledSequencer.start() for _ in range(n_actors)]
        start = threading.Barrier(producers)

        def produce(producer: int) -> None:
            start.wait(TIMEOUT)
            for seq in range(per_producer):
                for ref in refs:
                    ref.tell((producer, seq))

        threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT)
        assert not any(t.is_alive() for t in threads)

        all_threads: set[str] = set()
        for ref in refs:
            overlaps, received, used = ref.ask("report", block=True, timeout=TIMEOUT)
            assert overlaps == 0
            assert received == {p: list(range(per_producer)) for p in range(producers)}
            all_threads |= used
        assert len(all_threads) >= 2
        assert all(name.startswith("test-pool-") for name in all_threads)

    def test_a_turn_handles_at_most_throughput_messages(self) -> None:
        single = Dispatcher(workers=1, throughput=2, name="single")
        order: list[str] = []

        class Tagger(PooledActor):
            dispatcher = single

            def __init__(self, tag: str) -> None:
                super().__init__()
                self.tag = tag

            def on_receive(self, message: Any) -> Any:
                if isinstance(message, tuple):  # (entered, release): hold the only worker
                    message[0].set()
                    message[1].wait(TIMEOUT)
                    return None
                order.append(f"{self.tag}{message}")
                return None

        try:
            gate_holder, a, b = Tagger.start("g"), Tagger.start("a"), Tagger.start("b")
            for ref in (gate_holder, a, b):
                ref.ask("started", block=True, timeout=TIMEOUT)
            order.clear()
            entered, gate = threading.Event(), threading.Event()
            gate_holder.tell((entered, gate))
            assert entered.wait(TIMEOUT)  # the only worker is now busy
            for i in range(4):
                a.tell(i)
            for i in range(4):
                b.tell(i)
            gate.set()
            a.ask("sync", block=True, timeout=TIMEOUT)
            b.ask("sync", block=True, timeout=TIMEOUT)
            del order[8:]  # the two syncs
            assert order == ["a0", "a1", "b0", "b1", "a2", "a3", "b2", "b3"]
        finally:
            pykka.ActorRegistry.stop_all(timeout=TIMEOUT)
            single.shutdown(timeout=TIMEOUT)


class TestFailures:
    def test_exception_in_ask_reaches_caller_and_actor_lives(self) -> None:
        ref = Recorder.start()
        with pytest.raises(ValueError, match="boom"):
            ref.ask("boom", block=True, timeout=TIMEOUT)
        assert ref.is_alive()
        assert ref.ask("still here", block=True, timeout=TIMEOUT) == "still here"

    def test_exception_in_tell_calls_on_failure_and_stops_the_actor(self) -> None:
        ref = Recorder.start()
        other = Recorder.start()
        actor = actor_of(ref)
        ref.tell("boom")
        assert actor.failed.wait(TIMEOUT)
        assert ref.actor_stopped.wait(TIMEOUT)
        assert "stop" not in actor.events
        assert actor.events[-1] == "failure boom"
        assert pykka.ActorRegistry.get_by_urn(ref.actor_urn) is None
        with pytest.raises(pykka.ActorDeadError):
            ref.ask("anything", block=True, timeout=TIMEOUT)
        assert other.ask("served", block=True, timeout=TIMEOUT) == "served"

    def test_failing_on_start_stops_the_actor(self) -> None:
        class BadStart(Recorder):
            def on_start(self) -> None:
                raise RuntimeError("cannot start")

        ref = BadStart.start()
        actor = actor_of(ref)
        assert ref.actor_stopped.wait(TIMEOUT)
        assert pykka.ActorRegistry.get_by_urn(ref.actor_urn) is None
        with pytest.raises(pykka.ActorDeadError):
            ref.ask("anything", block=True, timeout=TIMEOUT)
        assert actor.events == []  # neither on_stop nor on_failure, as in pykka

    def test_base_exception_stops_every_actor(self) -> None:
        ref = Recorder.start()
        actor = actor_of(ref)  # held here: a stopped pooled actor is freed at once
        other = Recorder.start()
        threaded = ThreadingAsker.start(other)
        ref.tell("exit")
        assert ref.actor_stopped.wait(TIMEOUT)
        assert actor.stopped.is_set()  # _stop runs on_stop in this path
        assert other.actor_stopped.wait(TIMEOUT)
        assert threaded.actor_stopped.wait(TIMEOUT)


class TestStopping:
    def test_a_thread_waiting_on_actor_stopped_is_released_by_the_stop(self) -> None:
        ref = Recorder.start()
        assert not ref.actor_stopped.is_set()
        waited: list[bool] = []
        waiter = threading.Thread(target=lambda: waited.append(ref.actor_stopped.wait(TIMEOUT)))
        waiter.start()
        assert not ref.actor_stopped.wait(0.01)  # a waiter before the stop times out
        assert ref.stop(timeout=TIMEOUT) is True
        waiter.join(TIMEOUT)
        assert waited == [True]
        assert ref.actor_stopped.is_set()
        assert ref.actor_stopped.wait(0)
        assert not ref.is_alive()

    def test_urns_are_unique_uuid_urns(self) -> None:
        refs = [Recorder.start() for _ in range(50)]
        urns = [ref.actor_urn for ref in refs]
        assert len(set(urns)) == 50
        assert all(uuid.UUID(urn).urn == urn for urn in urns)
        registered = [pykka.ActorRegistry.get_by_urn(urn) for urn in urns]
        assert registered == refs

    def test_the_mailbox_lets_go_of_a_stopped_actor(self) -> None:
        """Actor and mailbox hold each other until teardown breaks the cycle, so reference
        counting frees a stopped actor without the cyclic GC."""
        one = Dispatcher(workers=1, name="one-worker")
        try:
            cls: type[Recorder] = type("OnOne", (Recorder,), {"dispatcher": one})
            ref, barrier = cls.start(), cls.start()
            mailbox = ref.actor_inbox
            assert getattr(mailbox, "actor", None) is not None
            assert ref.stop(timeout=TIMEOUT) is True
            barrier.ask("after", timeout=TIMEOUT)  # the one worker finished the stop's turn
            assert getattr(mailbox, "actor", "missing") is None
        finally:
            pykka.ActorRegistry.stop_all(timeout=TIMEOUT)
            one.shutdown(timeout=TIMEOUT)

    def test_a_tell_that_races_the_teardown_raises_actor_dead_error(self) -> None:
        ref = Recorder.start()
        inbox = ref.actor_inbox
        assert ref.stop(timeout=TIMEOUT) is True
        with pytest.raises(pykka.ActorDeadError):
            inbox.put(pykka._envelope.Envelope("late"))


    def test_stop_processes_earlier_mail_then_runs_on_stop(self) -> None:
        ref = Recorder.start()
        actor = actor_of(ref)
        for i in range(3):
            ref.tell(i)
        assert ref.stop(timeout=TIMEOUT) is True
        assert actor.events[1:] == ["msg 0", "msg 1", "msg 2", "stop"]
        assert not ref.is_alive()
        assert ref.stop(timeout=TIMEOUT) is False

    def test_ask_queued_behind_a_stop_gets_actor_dead_error(self) -> None:
        ref = Recorder.start()
        gate = threading.Event()
        ref.tell(gate)  # hold the actor so the stop and the ask queue up behind it
        stopping = ref.stop(block=False)
        behind = ref.ask("too late", block=False)
        gate.set()
        assert stopping.get(timeout=TIMEOUT) is True
        with pytest.raises(pykka.ActorDeadError):
            behind.get(timeout=TIMEOUT)

    def test_registry_stop_all_stops_pooled_actors(self) -> None:
        refs = [Recorder.start() for _ in range(5)]
        actors = [actor_of(r) for r in refs]
        assert pykka.ActorRegistry.stop_all(timeout=TIMEOUT) == [True] * 5
        assert all(a.stopped.is_set() for a in actors)
        assert not any(r.is_alive() for r in refs)


class ThreadingAsker(pykka.ThreadingActor):
    use_daemon_thread = True

    def __init__(self, target: pykka.ActorRef[Recorder]) -> None:
        super().__init__()
        self.target = target

    def on_receive(self, message: Any) -> Any:
        return self.target.ask(message, block=True, timeout=TIMEOUT)


class TestInterop:
    def test_threading_actor_can_ask_a_pooled_actor(self) -> None:
        pooled = Recorder.start()
        asker = ThreadingAsker.start(pooled)
        assert asker.ask("via thread", block=True, timeout=TIMEOUT) == "via thread"


class TestDispatcher:
    def test_rejects_bad_sizes(self) -> None:
        with pytest.raises(ValueError, match="workers"):
            Dispatcher(workers=0)
        with pytest.raises(ValueError, match="throughput"):
            Dispatcher(throughput=0)

    def test_shutdown_joins_workers_and_refuses_new_turns(self) -> None:
        dead = Dispatcher(workers=2, name="short-lived")
        threads = list(dead._threads)
        dead.shutdown(timeout=TIMEOUT)
        dead.shutdown(timeout=TIMEOUT)  # idempotent
        assert not any(t.is_alive() for t in threads)

        class Late(Recorder):
            dispatcher = dead

        with pytest.raises(DispatcherShutdownError):
            Late.start()
        assert pykka.ActorRegistry.get_by_class(Late) == []

    def test_default_dispatcher_is_recreated_after_shutdown(self) -> None:
        first = default_dispatcher()
        first.shutdown(timeout=TIMEOUT)
        second = default_dispatcher()
        assert second is not first
        ref = Recorder.start()
        assert ref.ask("alive", block=True, timeout=TIMEOUT) == "alive"


def hosted_recorder(host: HostedDispatcher) -> type[Recorder]:
    return type("Hosted", (Recorder,), {"dispatcher": host})


class TestHostedDispatcher:
    """Turns run on the host's thread, only when it asks; a released host hands over."""

    def test_turns_run_on_the_host_thread_only_when_it_runs_them(self) -> None:
        host = HostedDispatcher(name="test-host")
        wakes: list[int] = []
        host.bind(lambda: wakes.append(1))
        events: list[str] = []
        try:
            ref = hosted_recorder(host).start(events)
            assert wakes  # the first turn (on_start) was scheduled, and the host woken
            future = ref.ask("hello", block=False)
            assert events == []  # nothing runs until the host runs it
            for _ in range(3):
                host.run_ready()
            assert future.get(timeout=0) == "hello"
            here = threading.current_thread().name
            assert events == [f"start on {here}", "msg hello"]
        finally:
            host.release()
            pykka.ActorRegistry.stop_all(timeout=TIMEOUT)  # served by the fallback thread
            host.shutdown(timeout=TIMEOUT)

    def test_release_hands_pending_and_later_messages_to_a_thread_of_its_own(self) -> None:
        host = HostedDispatcher(name="test-host")
        events: list[str] = []
        ref = hosted_recorder(host).start(events)
        actor = actor_of(ref)
        ref.tell("pending")
        host.release()  # the host's loop ends with the turn still queued
        assert ref.ask("later", timeout=TIMEOUT) == "later"
        assert events[1:] == ["msg pending", "msg later"]
        assert ref.stop(timeout=TIMEOUT)
        host.shutdown(timeout=TIMEOUT)
        with pytest.raises(DispatcherShutdownError):
            host.schedule(actor)
