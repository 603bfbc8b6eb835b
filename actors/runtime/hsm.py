"""A small hierarchical state machine engine with the semantics of Hsm.jl.

The decision logic of the driver, stream and lease actors lives in state tables run by this
engine, so it has no I/O, no threads and no clock: handlers read the time from the event and
record what should happen through ``HsmModel.emit``; the actor performs the effects that
``Hsm.dispatch`` returns.

Semantics (each one is exercised by ``tests/unit/test_hsm.py``):

* A ``Machine`` has exactly one root state (``parent=None``); every other state names its
  parent. Every composite state (a state with children) must name an ``initial`` child, and
  only a direct child may be named. Anything else is rejected at construction with
  ``MachineDefinitionError``, as are handlers for unknown states.
* ``start()`` enters the root, then follows ``initial`` children down to a leaf.
* ``dispatch(event)`` looks for a handler from the current leaf up to the root, trying at each
  state ``type(event)`` and then its base classes in MRO order. A handler returns ``HANDLED``,
  ``NOT_HANDLED`` (keep bubbling) or ``Transition(target)``. An event nobody handles changes
  nothing, but it is never dropped silently: ``Hsm.unhandled`` counts it and ``on_unhandled``
  (default: a logging warning) is called with the current path and the event.
* A transition from source ``s`` (the state whose handler fired) to target ``t`` is external:
  it exits from the current leaf up to, not including, the least common ancestor, enters down
  to ``t`` and then follows initial children. When ``s`` and ``t`` are the same state, or one
  contains the other, the outer one is itself exited and re-entered (so a self-transition exits
  and re-enters its state).
* Entry and exit actions cannot transition: they must return ``None``.
* Run-to-completion: an event posted with ``model.post`` or dispatched while an event is being
  handled is queued and processed, in order, after the current event completes, inside the
  same outer ``dispatch`` call (the nested call returns an empty list). The outer call returns
  every effect emitted meanwhile, in order. Events posted (or effects emitted) outside any
  dispatch wait for the next one: those events are handled before its event, and those
  effects are returned with its own.
* If a handler or action raises, the exception propagates out of the outer ``dispatch``; the
  events still queued are discarded and the machine stays in the state it had reached (each
  exit and entry updates the current state as it completes). The effects that call had
  emitted are not returned by any later dispatch; they are set aside for ``take_abandoned()``,
  because they describe decisions the model has already applied: a host that keeps running
  after the error can still carry them out instead of leaving the world out of step with the
  model.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeAliasType, get_args

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "HANDLED",
    "NOT_HANDLED",
    "Handling",
    "Hsm",
    "HsmModel",
    "HsmRuntimeError",
    "Machine",
    "MachineDefinitionError",
    "Outcome",
    "State",
    "Transition",
    "effect_check",
]

logger = logging.getLogger(__name__)


class MachineDefinitionError(ValueError):
    """The state table is malformed: unknown parent, cycle, bad initial, orphan handler."""


class HsmRuntimeError(RuntimeError):
    """The machine was misused at run time: bad handler result, unknown target, not started."""


class Handling(enum.Enum):
    """A handler's answer when it does not transition."""

    HANDLED = "handled"
    NOT_HANDLED = "not_handled"


HANDLED: Final = Handling.HANDLED
NOT_HANDLED: Final = Handling.NOT_HANDLED


@dataclass(frozen=True, slots=True)
class Transition:
    """A handler's answer asking to move to ``target``."""

    target: str


type Outcome = Handling | Transition


class HsmModel:
    """Base class for the mutable state an HSM works on; it collects effects and posted events.

    Subclasses that define their own ``__init__`` (including dataclasses, whose generated
    ``__init__`` does not call ``super().__init__``) still work: ``Hsm`` prepares the buffers
    when it adopts the model.
    """

    __slots__ = ("_hsm_effects", "_hsm_queue")

    def __init__(self) -> None:
        self._hsm_prepare()

    def _hsm_prepare(self) -> None:
        if not hasattr(self, "_hsm_effects"):
            self._hsm_effects: list[object] = []
            self._hsm_queue: deque[object] = deque()

    def emit(self, effect: object) -> None:
        """Record an effect; the running ``dispatch`` (or ``start``) returns it."""
        self._hsm_effects.append(effect)

    def post(self, event: object) -> None:
        """Queue an event to handle after the current one completes (run-to-completion)."""
        self._hsm_queue.append(event)


@dataclass(frozen=True, slots=True)
class State[M: HsmModel]:
    """One state of a machine: its parent, initial child and entry/exit actions."""

    parent: str | None = None
    initial: str | None = None
    entry: Callable[[M], None] | None = None
    exit: Callable[[M], None] | None = None


type Handler[M: HsmModel] = Callable[[M, Any], Outcome]
type _Action[M: HsmModel] = Callable[[M], None] | None
# A step of a transition: (state whose action runs, action, current leaf once it has run).
type _Step[M: HsmModel] = tuple[str, _Action[M], str]


class Machine[M: HsmModel]:
    """A validated, immutable state table shared by every ``Hsm`` that runs it.

    Handler chains and transition paths are computed on first use and cached here, so that a
    dispatch costs a dict lookup and the handler calls.
    """

    def __init__(
        self,
        name: str,
        states: Mapping[str, State[M]],
        handlers: Mapping[tuple[str, type[object]], Handler[M]],
    ) -> None:
        self.name = name
        self.states: Mapping[str, State[M]] = dict(states)
        self.handlers: Mapping[tuple[str, type[object]], Handler[M]] = dict(handlers)
        self.root = self._validate()
        self._paths: dict[str, tuple[str, ...]] = {s: self._path_of(s) for s in self.states}
        # Cache of chain(): read directly by Hsm._process on the hot path.
        self.chains: dict[tuple[str, type[object]], tuple[tuple[str, Handler[M]], ...]] = {}
        self._transitions: dict[tuple[str, str, str], tuple[tuple[_Step[M], ...], str]] = {}
        self.start_steps: tuple[_Step[M], ...] = self._entries(None, self.root)

    def __repr__(self) -> str:
        return f"Machine({self.name!r}, {len(self.states)} states)"

    def _validate(self) -> str:
        if not self.states:
            raise MachineDefinitionError(f"machine {self.name}: no states")
        root = self._check_hierarchy()
        self._check_initials()
        for state, event_type in self.handlers:
            if state not in self.states:
                raise MachineDefinitionError(
                    f"machine {self.name}: handler for unknown state {state}"
                )
            if not isinstance(event_type, type):
                raise MachineDefinitionError(
                    f"machine {self.name}: handler key ({state}, {event_type!r}) needs a type"
                )
        return root

    def _check_hierarchy(self) -> str:
        states = self.states
        roots = [name for name, st in states.items() if st.parent is None]
        if len(roots) != 1:
            raise MachineDefinitionError(
                f"machine {self.name}: needs exactly one root state, got {sorted(roots)}"
            )
        for name, st in states.items():
            if st.parent is not None and st.parent not in states:
                raise MachineDefinitionError(
                    f"machine {self.name}: state {name} has unknown parent {st.parent}"
                )
        for name in states:
            seen = {name}
            parent = states[name].parent
            while parent is not None:
                if parent in seen:
                    raise MachineDefinitionError(
                        f"machine {self.name}: parent cycle through state {name}"
                    )
                seen.add(parent)
                parent = states[parent].parent
        return roots[0]

    def _check_initials(self) -> None:
        children: dict[str, list[str]] = {}
        for name, st in self.states.items():
            if st.parent is not None:
                children.setdefault(st.parent, []).append(name)
        for name, st in self.states.items():
            if st.initial is None:
                if name in children:
                    raise MachineDefinitionError(
                        f"machine {self.name}: composite state {name} has no initial child"
                    )
            elif st.initial not in children.get(name, ()):
                raise MachineDefinitionError(
                    f"machine {self.name}: initial {st.initial} of state {name}"
                    " is not a child of it"
                )

    def _path_of(self, state: str) -> tuple[str, ...]:
        path: list[str] = []
        current: str | None = state
        while current is not None:
            path.append(current)
            current = self.states[current].parent
        return tuple(reversed(path))

    def path(self, state: str) -> tuple[str, ...]:
        """States from the root down to ``state``."""
        return self._paths[state]

    def chain(self, leaf: str, event_type: type[object]) -> tuple[tuple[str, Handler[M]], ...]:
        """Handlers to try, in order, for an event of ``event_type`` in ``leaf``."""
        key = (leaf, event_type)
        found = self.chains.get(key)
        if found is None:
            handlers = self.handlers
            found = tuple(
                (state, handler)
                for state in reversed(self._paths[leaf])
                for cls in event_type.__mro__
                if (handler := handlers.get((state, cls))) is not None
            )
            self.chains[key] = found
        return found

    def transition(self, leaf: str, source: str, target: str) -> tuple[tuple[_Step[M], ...], str]:
        """Exit and entry steps for ``source -> target`` from ``leaf``, and the final leaf."""
        key = (leaf, source, target)
        found = self._transitions.get(key)
        if found is None:
            if target not in self.states:
                raise HsmRuntimeError(f"machine {self.name}: unknown target state {target}")
            lca = self._lca(source, target)
            exits: list[_Step[M]] = []
            current = leaf
            while current != lca:
                parent = self.states[current].parent
                exits.append((current, self.states[current].exit, parent or ""))
                if parent is None:
                    break
                current = parent
            steps = (*exits, *self._entries(lca, target))
            found = (steps, steps[-1][2])
            self._transitions[key] = found
        return found

    def _lca(self, source: str, target: str) -> str | None:
        """The innermost state that is neither exited nor re-entered (None: above the root)."""
        source_path, target_path = self._paths[source], self._paths[target]
        common = 0
        for a, b in zip(source_path, target_path, strict=False):
            if a != b:
                break
            common += 1
        # If one path contains the other, the outer state is exited and re-entered.
        if common in (len(source_path), len(target_path)):
            common -= 1
        return source_path[common - 1] if common > 0 else None

    def _entries(self, above: str | None, target: str) -> tuple[_Step[M], ...]:
        path = self._paths[target]
        start = 0 if above is None else path.index(above) + 1
        steps: list[_Step[M]] = [(s, self.states[s].entry, s) for s in path[start:]]
        initial = self.states[target].initial
        while initial is not None:
            steps.append((initial, self.states[initial].entry, initial))
            initial = self.states[initial].initial
        return tuple(steps)


def effect_check(union: TypeAliasType, what: str) -> Callable[[object], Any]:
    """A check that types an effect as a member of ``union`` (a ``type X = A | B`` alias);
    anything else is a bug, raised on and never silently dropped, so that a host's
    ``match`` over the union with ``assert_never`` sees every effect its machine emits."""
    members = get_args(union.__value__)

    def check(effect: object) -> object:
        if isinstance(effect, members):
            return effect
        raise TypeError(f"unknown {what} {effect!r}")

    return check


def _warn_unhandled(path: tuple[str, ...], event: object) -> None:
    logger.warning("unhandled event %r in state %s", event, ".".join(path))


class Hsm[M: HsmModel]:
    """One running instance of a ``Machine`` over one model; not thread-safe (one actor owns it)."""

    __slots__ = (
        "_abandoned",
        "_busy",
        "_leaf",
        "_machine",
        "_model",
        "_on_unhandled",
        "_unhandled",
    )

    def __init__(
        self,
        machine: Machine[M],
        model: M,
        on_unhandled: Callable[[tuple[str, ...], object], None] | None = None,
    ) -> None:
        model._hsm_prepare()  # noqa: SLF001 - the engine owns the model's buffers
        self._machine = machine
        self._model = model
        self._on_unhandled = on_unhandled or _warn_unhandled
        self._leaf: str | None = None
        self._busy = False
        self._unhandled = 0
        self._abandoned: list[object] = []

    def __repr__(self) -> str:
        return f"Hsm({self._machine.name}, state={self._leaf})"

    @property
    def machine(self) -> Machine[M]:
        return self._machine

    @property
    def model(self) -> M:
        return self._model

    @property
    def started(self) -> bool:
        return self._leaf is not None

    @property
    def state(self) -> str:
        """The current leaf state."""
        return self._require_started()

    @property
    def path(self) -> tuple[str, ...]:
        """States from the root down to the current leaf."""
        return self._machine.path(self._require_started())

    @property
    def unhandled(self) -> int:
        """How many events no state handled (each was also passed to ``on_unhandled``)."""
        return self._unhandled

    def in_state(self, name: str) -> bool:
        """Whether ``name`` is the current leaf or one of its ancestors."""
        return name in self._machine.path(self._require_started())

    def start(self) -> list[object]:
        """Enter the root and its initial chain; return the effects emitted meanwhile."""
        if self._leaf is not None:
            raise HsmRuntimeError(f"machine {self._machine.name} already started")
        self._busy = True
        try:
            self._run_steps(self._machine.start_steps)
            self._drain()
        except BaseException:
            self._discard()
            raise
        finally:
            self._busy = False
        return self._take_effects()

    def dispatch(self, event: object) -> list[object]:
        """Handle ``event`` and every event queued meanwhile; return the effects emitted."""
        if self._leaf is None:
            raise HsmRuntimeError(f"machine {self._machine.name} dispatched before start")
        model = self._model
        queue = model._hsm_queue  # noqa: SLF001
        if self._busy:
            queue.append(event)
            return []
        if queue:  # events posted outside a dispatch go first (FIFO)
            queue.append(event)
            event = queue.popleft()
        self._busy = True
        try:
            self._process(event)
            while queue:
                self._process(queue.popleft())
        except BaseException:
            self._discard()
            raise
        finally:
            self._busy = False
        effects = model._hsm_effects  # noqa: SLF001
        if not effects:
            return []
        model._hsm_effects = []  # noqa: SLF001
        return effects

    def _require_started(self) -> str:
        if self._leaf is None:
            raise HsmRuntimeError(f"machine {self._machine.name} not started")
        return self._leaf

    def _take_effects(self) -> list[object]:
        model = self._model
        effects = model._hsm_effects  # noqa: SLF001
        model._hsm_effects = []  # noqa: SLF001
        return effects

    def take_abandoned(self) -> list[object]:
        """The effects emitted by the last dispatch that raised, once (then empty)."""
        abandoned, self._abandoned = self._abandoned, []
        return abandoned

    def _discard(self) -> None:
        self._model._hsm_queue.clear()  # noqa: SLF001
        self._abandoned = self._model._hsm_effects  # noqa: SLF001
        self._model._hsm_effects = []  # noqa: SLF001

    def _drain(self) -> None:
        queue = self._model._hsm_queue  # noqa: SLF001
        while queue:
            self._process(queue.popleft())

    def _process(self, event: object) -> None:
        machine, model = self._machine, self._model
        leaf = self._leaf
        assert leaf is not None  # dispatch checked it
        chain = machine.chains.get((leaf, type(event)))
        if chain is None:
            chain = machine.chain(leaf, type(event))
        for source, handler in chain:
            outcome = handler(model, event)
            if outcome is HANDLED:
                return
            if outcome is NOT_HANDLED:
                continue
            if isinstance(outcome, Transition):
                steps, _ = machine.transition(leaf, source, outcome.target)
                self._run_steps(steps)
                return
            raise HsmRuntimeError(
                f"machine {machine.name}: handler for {type(event).__name__} in {source}"
                f" returned {outcome!r}; expected HANDLED, NOT_HANDLED or Transition"
            )
        self._unhandled += 1
        self._on_unhandled(machine.path(leaf), event)

    def _run_steps(self, steps: tuple[_Step[M], ...]) -> None:
        model = self._model
        for state, action, leaf_after in steps:
            if action is not None:
                result: object = action(model)
                if result is not None:
                    raise HsmRuntimeError(
                        f"machine {self._machine.name}: entry/exit action of {state} returned"
                        f" {result!r}; entry and exit actions cannot transition"
                    )
            self._leaf = leaf_after or None
