"""GcFreezer: survivors of middle-generation passes are frozen; uninstall collects them once."""

from __future__ import annotations

import gc

from actors.runtime.gc_freezer import GcFreezer


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> _Node:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return a


def test_survivors_of_a_generation_1_pass_are_frozen_and_full_passes_skip_them() -> None:
    freezer = GcFreezer()
    freezer.install()
    try:
        assert gc.get_freeze_count() > 0  # what start-up made
        kept = [_cycle() for _ in range(100)]
        frozen_before = gc.get_freeze_count()
        gc.collect(1)  # what the collector does on its own every ~7,000 allocations
        assert freezer.freezes == 1
        assert gc.get_freeze_count() >= frozen_before + 200
        gc.collect(0)  # a young pass does not freeze
        assert freezer.freezes == 1
        assert len(kept) == 100
    finally:
        freezer.uninstall()
    assert gc.get_freeze_count() < frozen_before  # given back to the collector


def test_uninstall_collects_the_cycles_the_freezing_kept_and_stops_freezing() -> None:
    freezer = GcFreezer()
    freezer.install()
    installed_again = True
    try:
        freezer.install()  # idempotent: one callback
        assert gc.callbacks.count(freezer._on_gc) == 1
        doomed = [_cycle() for _ in range(50)]
        gc.collect(1)  # frozen while still referenced
        del doomed  # now garbage, but frozen: no pass sees it
        assert gc.collect() == 0
        found = freezer.uninstall()
        installed_again = False
        assert found >= 100  # the 50 two-node cycles (and the list's leftovers, if any)
        assert freezer._on_gc not in gc.callbacks
        baseline = gc.get_freeze_count()
        survivors = [_cycle() for _ in range(50)]
        gc.collect(1)
        assert gc.get_freeze_count() == baseline  # no longer frozen
        assert len(survivors) == 50
        assert freezer.uninstall() == 0  # idempotent
    finally:
        if installed_again:
            freezer.uninstall()
