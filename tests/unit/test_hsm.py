"""The HSM engine: entry/exit order, bubbling, reporting, run-to-completion, validation."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pytest

from actors.runtime.hsm import (
    HANDLED,
    NOT_HANDLED,
    Hsm,
    HsmModel,
    HsmRuntimeError,
    Machine,
    MachineDefinitionError,
    Outcome,
    State,
    Transition,
    effect_check,
)

# --------------------------------------------------------------------------------------------
# A machine shaped like Hsm.jl's test machine:
#
#   Top ── S1 ── S11
#       │     └─ S12
#       └─ S2 ── S21 ── S211


class Log(HsmModel):
    def __init__(self) -> None:
        super().__init__()
        self.log: list[str] = []
        self.counter = 0


class Event:
    pass


class Go(Event):
    """Carries a target for the handler to transition to."""

    def __init__(self, target: str) -> None:
        self.target = target


class Bump(Event):
    pass


class SpecialBump(Bump):
    pass


class Ping(Event):
    pass


class Unknown:
    pass


def entry(name: str) -> Any:
    return lambda m: m.log.append(f"enter {name}")


def exit_(name: str) -> Any:
    return lambda m: m.log.append(f"exit {name}")


def state(name: str, parent: str | None, initial: str | None = None) -> State[Log]:
    return State(parent=parent, initial=initial, entry=entry(name), exit=exit_(name))


STATES = {
    "Top": state("Top", None, "S1"),
    "S1": state("S1", "Top", "S11"),
    "S11": state("S11", "S1"),
    "S12": state("S12", "S1"),
    "S2": state("S2", "Top", "S21"),
    "S21": state("S21", "S2", "S211"),
    "S211": state("S211", "S21"),
}


def go_from(name: str) -> Any:
    def handler(m: Log, ev: Go) -> Outcome:
        m.log.append(f"Go in {name}")
        return Transition(ev.target)

    return handler


def bump(m: Log, _ev: Bump) -> Outcome:
    m.counter += 1
    m.log.append("bump in S11")
    return HANDLED


def special_bump(m: Log, _ev: SpecialBump) -> Outcome:
    m.log.append("special bump in S1")
    return HANDLED


def ping_declined(m: Log, _ev: Ping) -> Outcome:
    m.log.append("ping declined in S12")
    return NOT_HANDLED


def ping_top(m: Log, _ev: Ping) -> Outcome:
    m.log.append("ping in Top")
    return HANDLED


def make(handlers: dict[tuple[str, type[object]], Any] | None = None) -> Hsm[Log]:
    default: dict[tuple[str, type[object]], Any] = {
        ("S1", Go): go_from("S1"),
        ("S11", Go): go_from("S11"),
        ("S211", Go): go_from("S211"),
        ("Top", Go): go_from("Top"),
        ("S11", Bump): bump,
        ("S1", SpecialBump): special_bump,
        ("S12", Ping): ping_declined,
        ("Top", Ping): ping_top,
    }
    hsm = Hsm(Machine("Test", STATES, handlers if handlers is not None else default), Log())
    hsm.start()
    hsm.model.log.clear()
    return hsm


# --------------------------------------------------------------------------------------------


class TestStart:
    def test_start_enters_root_and_follows_initial_chain(self) -> None:
        hsm = Hsm(Machine("Test", STATES, {}), Log())
        assert hsm.start() == []
        assert hsm.model.log == ["enter Top", "enter S1", "enter S11"]
        assert hsm.state == "S11"
        assert hsm.path == ("Top", "S1", "S11")

    def test_start_returns_effects_of_entry_actions(self) -> None:
        class M(HsmModel):
            pass

        machine: Machine[M] = Machine(
            "M",
            {"A": State(initial="B", entry=lambda m: m.emit("a")), "B": State(parent="A")},
            {},
        )
        assert Hsm(machine, M()).start() == ["a"]

    def test_second_start_is_rejected(self) -> None:
        hsm = make()
        with pytest.raises(HsmRuntimeError, match="already started"):
            hsm.start()

    def test_dispatch_before_start_is_rejected(self) -> None:
        hsm = Hsm(Machine("Test", STATES, {}), Log())
        with pytest.raises(HsmRuntimeError, match="before start"):
            hsm.dispatch(Ping())
        with pytest.raises(HsmRuntimeError, match="not started"):
            _ = hsm.state


class TestTransitions:
    def test_sibling_transition(self) -> None:
        hsm = make()
        hsm.dispatch(Go("S12"))  # handled by S11 itself
        assert hsm.model.log == ["Go in S11", "exit S11", "enter S12"]
        assert hsm.state == "S12"

    def test_transition_from_ancestor_exits_from_the_leaf(self) -> None:
        hsm = make({("S1", Go): go_from("S1")})
        hsm.dispatch(Go("S2"))
        assert hsm.model.log == [
            "Go in S1",
            "exit S11",
            "exit S1",
            "enter S2",
            "enter S21",
            "enter S211",
        ]
        assert hsm.path == ("Top", "S2", "S21", "S211")

    def test_cousin_transition_two_levels_deep(self) -> None:
        hsm = make()
        hsm.dispatch(Go("S211"))
        hsm.model.log.clear()
        hsm.dispatch(Go("S12"))
        assert hsm.model.log == [
            "Go in S211",
            "exit S211",
            "exit S21",
            "exit S2",
            "enter S1",
            "enter S12",
        ]

    def test_self_transition_exits_and_reenters(self) -> None:
        hsm = make()
        hsm.dispatch(Go("S11"))
        assert hsm.model.log == ["Go in S11", "exit S11", "enter S11"]
        assert hsm.state == "S11"

    def test_self_transition_of_a_composite_reenters_its_initial_child(self) -> None:
        hsm = make({("S1", Go): go_from("S1")})
        hsm.dispatch(Go("S1"))
        assert hsm.model.log == [
            "Go in S1",
            "exit S11",
            "exit S1",
            "enter S1",
            "enter S11",
        ]

    def test_transition_to_an_ancestor_exits_and_reenters_it(self) -> None:
        hsm = make({("S11", Go): go_from("S11")})
        hsm.dispatch(Go("S1"))
        assert hsm.model.log == ["Go in S11", "exit S11", "exit S1", "enter S1", "enter S11"]

    def test_transition_to_a_descendant_of_the_source_is_external(self) -> None:
        hsm = make({("S1", Go): go_from("S1")})
        hsm.dispatch(Go("S12"))
        assert hsm.model.log == ["Go in S1", "exit S11", "exit S1", "enter S1", "enter S12"]

    def test_transition_to_the_root_reenters_everything(self) -> None:
        hsm = make({("Top", Go): go_from("Top")})
        hsm.dispatch(Go("Top"))
        assert hsm.model.log == [
            "Go in Top",
            "exit S11",
            "exit S1",
            "exit Top",
            "enter Top",
            "enter S1",
            "enter S11",
        ]
        assert hsm.state == "S11"

    def test_transition_to_a_composite_follows_initial_transitions(self) -> None:
        hsm = make()
        hsm.dispatch(Go("S2"))
        assert hsm.model.log[-3:] == ["enter S2", "enter S21", "enter S211"]
        assert hsm.state == "S211"

    def test_unknown_target_is_an_error(self) -> None:
        hsm = make()
        with pytest.raises(HsmRuntimeError, match="unknown target state Nowhere"):
            hsm.dispatch(Go("Nowhere"))
        assert hsm.state == "S11"

    def test_same_transition_twice_uses_the_same_order(self) -> None:
        hsm = make()
        for _ in range(2):
            hsm.model.log.clear()
            hsm.dispatch(Go("S12"))
            hsm.dispatch(Go("S11"))  # S12 has no handler: bubbles to S1
            assert hsm.model.log == [
                "Go in S11",
                "exit S11",
                "enter S12",
                "Go in S1",
                "exit S12",
                "exit S1",
                "enter S1",
                "enter S11",
            ]


class TestHandlerLookup:
    def test_leaf_handler_handles(self) -> None:
        hsm = make()
        hsm.dispatch(Bump())
        assert hsm.model.counter == 1
        assert hsm.model.log == ["bump in S11"]

    def test_event_bubbles_to_parent_when_leaf_has_no_handler(self) -> None:
        hsm = make()
        hsm.dispatch(Go("S12"))
        hsm.model.log.clear()
        hsm.dispatch(Go("S2"))
        assert hsm.model.log[0] == "Go in S1"

    def test_not_handled_keeps_bubbling(self) -> None:
        hsm = make()
        hsm.dispatch(Go("S12"))
        hsm.model.log.clear()
        hsm.dispatch(Ping())
        assert hsm.model.log == ["ping declined in S12", "ping in Top"]
        assert hsm.unhandled == 0

    def test_exact_type_in_a_state_wins_over_base_class_in_that_state(self) -> None:
        calls: list[str] = []

        def on_base(_m: Log, _ev: Bump) -> Outcome:
            calls.append("base")
            return HANDLED

        def on_exact(_m: Log, _ev: SpecialBump) -> Outcome:
            calls.append("exact")
            return HANDLED

        hsm = make({("S11", Bump): on_base, ("S11", SpecialBump): on_exact})
        hsm.dispatch(SpecialBump())
        hsm.dispatch(Bump())
        assert calls == ["exact", "base"]

    def test_base_class_handler_in_leaf_wins_over_exact_type_in_parent(self) -> None:
        hsm = make()
        hsm.dispatch(SpecialBump())  # S11 handles Bump (a base), S1 handles SpecialBump
        assert hsm.model.log == ["bump in S11"]

    def test_base_class_matching_reaches_object(self) -> None:
        seen: list[object] = []

        def anything(_m: Log, ev: object) -> Outcome:
            seen.append(ev)
            return HANDLED

        hsm = make({("Top", object): anything})
        event = Unknown()
        hsm.dispatch(event)
        assert seen == [event]
        assert hsm.unhandled == 0

    def test_bad_handler_result_is_an_error(self) -> None:
        hsm = make({("S11", Ping): lambda _m, _ev: None})
        with pytest.raises(HsmRuntimeError, match="expected HANDLED, NOT_HANDLED or Transition"):
            hsm.dispatch(Ping())


class TestUnhandled:
    def test_unhandled_event_changes_nothing_and_is_reported(self) -> None:
        reports: list[tuple[tuple[str, ...], object]] = []
        hsm = Hsm(
            Machine("Test", STATES, {}),
            Log(),
            on_unhandled=lambda path, ev: reports.append((path, ev)),
        )
        hsm.start()
        hsm.model.log.clear()
        event = Unknown()
        assert hsm.dispatch(event) == []
        assert hsm.model.log == []
        assert hsm.state == "S11"
        assert hsm.unhandled == 1
        assert reports == [(("Top", "S1", "S11"), event)]

    def test_event_every_state_declines_is_unhandled(self) -> None:
        hsm = make({("S11", Ping): lambda _m, _ev: NOT_HANDLED})
        hsm.dispatch(Ping())
        hsm.dispatch(Ping())
        assert hsm.unhandled == 2

    def test_default_report_is_a_logged_warning(self, caplog: pytest.LogCaptureFixture) -> None:
        hsm = make({})
        with caplog.at_level(logging.WARNING, logger="actors.runtime.hsm"):
            hsm.dispatch(Unknown())
        assert len(caplog.records) == 1
        assert "Top.S1.S11" in caplog.records[0].getMessage()
        assert "Unknown" in caplog.records[0].getMessage()


@dataclass
class Recorder(HsmModel):
    """A dataclass model: its generated __init__ does not call HsmModel.__init__."""

    log: list[str] = field(default_factory=list)
    hsm: Hsm[Recorder] | None = None


class A:
    pass


class B:
    pass


class C:
    pass


class TestRunToCompletion:
    def machine(self) -> Machine[Recorder]:
        def on_a(m: Recorder, _ev: A) -> Outcome:
            m.log.append("A start")
            m.emit("effect A1")
            m.post(B())
            assert m.hsm is not None
            assert m.hsm.dispatch(C()) == []  # nested dispatch queues, returns nothing
            m.log.append("A end")
            m.emit("effect A2")
            return Transition("Two")

        def on_b(m: Recorder, _ev: B) -> Outcome:
            m.log.append("B")
            m.emit("effect B")
            return HANDLED

        def on_c(m: Recorder, _ev: C) -> Outcome:
            m.log.append("C")
            m.emit("effect C")
            return HANDLED

        def enter_two(m: Recorder) -> None:
            m.log.append("enter Two")
            m.emit("entered Two")

        return Machine(
            "RTC",
            {
                "Root": State(initial="One"),
                "One": State(parent="Root", exit=lambda m: m.log.append("exit One")),
                "Two": State(parent="Root", entry=enter_two),
            },
            {("One", A): on_a, ("Two", B): on_b, ("Two", C): on_c},
        )

    def test_posted_and_nested_events_run_after_the_current_one(self) -> None:
        model = Recorder()
        hsm = Hsm(self.machine(), model)
        model.hsm = hsm
        hsm.start()
        effects = hsm.dispatch(A())
        # B and C are handled in Two: the transition completed before either started.
        assert model.log == ["A start", "A end", "exit One", "enter Two", "B", "C"]
        assert effects == ["effect A1", "effect A2", "entered Two", "effect B", "effect C"]
        assert hsm.dispatch(C()) == ["effect C"]

    def test_exception_discards_queue_and_effects(self) -> None:
        class Boom(HsmModel):
            pass

        def explode(m: Boom, _ev: A) -> Outcome:
            m.emit("lost")
            m.post(B())
            raise RuntimeError("bug")

        seen: list[object] = []

        def on_b(_m: Boom, ev: B) -> Outcome:
            seen.append(ev)
            return HANDLED

        machine: Machine[Boom] = Machine(
            "Boom", {"R": State()}, {("R", A): explode, ("R", B): on_b}
        )
        hsm = Hsm(machine, Boom())
        hsm.start()
        with pytest.raises(RuntimeError, match="bug"):
            hsm.dispatch(A())
        assert hsm.dispatch(C()) == []  # no leftover effect, B was dropped
        assert seen == []
        assert hsm.unhandled == 1


class TestStateQueries:
    def test_path_and_in_state(self) -> None:
        hsm = make()
        hsm.dispatch(Go("S211"))
        assert hsm.path == ("Top", "S2", "S21", "S211")
        assert hsm.state == "S211"
        assert hsm.in_state("S211")
        assert hsm.in_state("S21")
        assert hsm.in_state("Top")
        assert not hsm.in_state("S1")
        assert not hsm.in_state("S11")


class TestEntryExitCannotTransition:
    def test_entry_returning_a_transition_is_rejected(self) -> None:
        class M(HsmModel):
            pass

        machine: Machine[M] = Machine(
            "M",
            {
                "R": State(initial="X"),
                "X": State(parent="R"),
                "Y": State(parent="R", entry=lambda _m: Transition("X")),  # type: ignore[arg-type]
            },
            {("X", A): lambda _m, _ev: Transition("Y")},
        )
        hsm = Hsm(machine, M())
        hsm.start()
        with pytest.raises(HsmRuntimeError, match="cannot transition"):
            hsm.dispatch(A())


class TestValidation:
    def test_unknown_parent(self) -> None:
        with pytest.raises(MachineDefinitionError, match="unknown parent Nope"):
            Machine("M", {"R": State(), "X": State(parent="Nope")}, {})

    def test_cycle(self) -> None:
        with pytest.raises(MachineDefinitionError, match="cycle"):
            Machine("M", {"R": State(), "X": State(parent="Y"), "Y": State(parent="X")}, {})

    def test_two_roots(self) -> None:
        with pytest.raises(MachineDefinitionError, match="exactly one root"):
            Machine("M", {"R": State(), "Q": State()}, {})

    def test_no_states(self) -> None:
        with pytest.raises(MachineDefinitionError, match="no states"):
            Machine("M", {}, {})

    def test_initial_not_a_child(self) -> None:
        with pytest.raises(MachineDefinitionError, match="initial Z of state R is not a child"):
            Machine(
                "M",
                {"R": State(initial="Z"), "X": State(parent="R"), "Z": State(parent="X")},
                {},
            )

    def test_initial_on_a_leaf(self) -> None:
        with pytest.raises(MachineDefinitionError, match="not a child"):
            Machine("M", {"R": State(initial="R")}, {})

    def test_composite_without_initial(self) -> None:
        with pytest.raises(MachineDefinitionError, match="composite state R has no initial"):
            Machine("M", {"R": State(), "X": State(parent="R")}, {})

    def test_handler_for_unknown_state(self) -> None:
        with pytest.raises(MachineDefinitionError, match="handler for unknown state Q"):
            Machine("M", {"R": State()}, {("Q", A): lambda _m, _ev: HANDLED})

    def test_handler_key_must_be_a_type(self) -> None:
        with pytest.raises(MachineDefinitionError, match="needs a type"):
            Machine("M", {"R": State()}, {("R", A()): lambda _m, _ev: HANDLED})  # type: ignore[dict-item]


class TestPostOutsideDispatch:
    def test_event_posted_outside_a_dispatch_is_handled_first_by_the_next_dispatch(self) -> None:
        order: list[str] = []

        def on_a(_m: Log, _ev: A) -> Outcome:
            order.append("A")
            return HANDLED

        def on_b(_m: Log, _ev: B) -> Outcome:
            order.append("B")
            return HANDLED

        hsm = make({("S11", A): on_a, ("S11", B): on_b})
        hsm.model.post(A())
        assert order == []
        hsm.dispatch(B())
        assert order == ["A", "B"]


type AOrB = A | B


def test_effect_check_types_members_of_the_union_and_raises_on_anything_else() -> None:
    check = effect_check(AOrB, "test effect")
    a, b = A(), B()
    assert (check(a), check(b)) == (a, b)
    with pytest.raises(TypeError, match="unknown test effect"):
        check(C())
