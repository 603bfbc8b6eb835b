"""CommandQueue: calls run in order on the owning thread; a gone owner fails the rest."""

from __future__ import annotations

import pytest

from tensorpool_client.command_queue import CommandQueue


def test_calls_run_in_order_with_the_owners_arguments() -> None:
    q = CommandQueue()
    seen: list[int] = []

    def record(value: int, answer: int) -> int:
        seen.append(value)
        return answer

    first = q.put(lambda x: record(x, 1))
    second = q.put(lambda x: record(x * 10, 2))
    assert q.run(3) == 2
    assert seen == [3, 30]
    assert (first.result(0), second.result(0)) == (1, 2)
    assert q.run(3) == 0


def test_an_error_goes_to_its_caller_and_the_next_call_still_runs() -> None:
    q = CommandQueue()
    bad = q.put(lambda: 1 / 0)
    good = q.put(lambda: "ok")
    q.run()
    with pytest.raises(ZeroDivisionError):
        bad.result(0)
    assert good.result(0) == "ok"


def test_fail_all_answers_every_queued_call_and_skips_cancelled_ones() -> None:
    q = CommandQueue()
    waiting = q.put(lambda: "never")
    cancelled = q.put(lambda: "never")
    assert cancelled.cancel()
    q.fail_all(lambda: RuntimeError("owner gone"))
    with pytest.raises(RuntimeError, match="owner gone"):
        waiting.result(0)
    assert q.run() == 0
