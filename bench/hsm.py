"""Cost of one Hsm.dispatch, in ns/event, for the three shapes the driver's machines use.

    .venv/bin/python bench/hsm.py [events]

* leaf: the current leaf handles the event (HANDLED).
* bubbled: the leaf and its parent decline (no handler / NOT_HANDLED); the root handles it.
* transition: a handler in a depth-3 leaf transitions to a cousin leaf two levels away
  (3 exits, 3 entries incl. an initial transition), alternating back and forth; entry/exit
  actions are no-ops so the number is the engine's own cost.

Best of 5 runs; each run dispatches ``events`` events (default 200,000).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.runtime.hsm import (
    HANDLED,
    NOT_HANDLED,
    Hsm,
    HsmModel,
    Machine,
    Outcome,
    State,
    Transition,
)


class Tick:
    pass


class Bubble:
    pass


class Flip:
    pass


class Model(HsmModel):
    def __init__(self) -> None:
        super().__init__()
        self.n = 0


def noop(_m: Model) -> None:
    return None


def count(m: Model, _ev: object) -> Outcome:
    m.n += 1
    return HANDLED


def decline(_m: Model, _ev: object) -> Outcome:
    return NOT_HANDLED


MACHINE: Machine[Model] = Machine(
    "Bench",
    {
        "Root": State(initial="A", entry=noop, exit=noop),
        "A": State(parent="Root", initial="A1", entry=noop, exit=noop),
        "A1": State(parent="A", initial="A11", entry=noop, exit=noop),
        "A11": State(parent="A1", entry=noop, exit=noop),
        "B": State(parent="Root", initial="B1", entry=noop, exit=noop),
        "B1": State(parent="B", initial="B11", entry=noop, exit=noop),
        "B11": State(parent="B1", entry=noop, exit=noop),
    },
    {
        ("A11", Tick): count,
        ("A1", Bubble): decline,
        ("Root", Bubble): count,
        ("A11", Flip): lambda _m, _ev: Transition("B1"),
        ("B11", Flip): lambda _m, _ev: Transition("A1"),
    },
)


def run(event: object, n: int) -> float:
    best = float("inf")
    for _ in range(5):
        hsm = Hsm(MACHINE, Model())
        hsm.start()
        dispatch = hsm.dispatch
        t0 = time.perf_counter_ns()
        for _ in range(n):
            dispatch(event)
        best = min(best, (time.perf_counter_ns() - t0) / n)
    return best


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    print(f"Hsm.dispatch, best of 5 x {n:,} events, Python {sys.version.split()[0]}")
    print(f"{'case':<12}{'ns/event':>10}")
    for name, event in (("leaf", Tick()), ("bubbled", Bubble()), ("transition", Flip())):
        print(f"{name:<12}{run(event, n):>10.0f}")


if __name__ == "__main__":
    main()
