"""Round-robin ids inside ranges (dynamic streams §3.1/A-2, per-consumer streams §12)."""

from actors.driver.stream_ids import RangeAllocator
from tensorpool_config.model import IdRange


def test_candidate_prefers_a_free_requested_id_inside_a_range() -> None:
    used: set[int] = set()
    ids = RangeAllocator((IdRange(10, 19),), used.__contains__)
    assert ids.candidate(15) == 15
    assert ids.candidate(25) == 10  # outside every range: allocate
    used.add(15)
    assert ids.candidate(15) == 10  # taken: allocate


def test_take_advances_the_cursor_and_wraps_across_ranges() -> None:
    used: set[int] = set()
    ids = RangeAllocator((IdRange(1, 2), IdRange(5, 5)), used.__contains__)
    got = []
    for _ in range(4):
        value = ids.candidate()
        assert value is not None
        ids.take(value)
        got.append(value)
    assert got == [1, 2, 5, 1]


def test_exhausted_range_gives_none() -> None:
    used = {1, 2}
    ids = RangeAllocator((IdRange(1, 2),), used.__contains__)
    assert ids.candidate(used_count=2) is None
    assert ids.candidate() is None


def test_no_range_is_not_configured() -> None:
    ids = RangeAllocator((), lambda _v: False)
    assert not ids.configured
    assert ids.candidate(5) is None


def test_used_count_bounds_a_huge_range() -> None:
    used = {1, 2, 3}
    ids = RangeAllocator((IdRange(1, 2**32 - 1),), used.__contains__)
    assert ids.candidate(used_count=3) == 4
