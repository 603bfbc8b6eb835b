"""Range syntax (A-17) and the start-up checks on ranges (driver-behaviour.md §13)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tensorpool_config import ConfigError, IdRange, format_ranges, in_ranges, parse_ranges
from tests.config.helpers import MINIMAL, Load

MAX = 2**32 - 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20000-29999", (IdRange(20000, 29999),)),
        ("5", (IdRange(5, 5),)),
        ("5,9", (IdRange(5, 9),)),
        (" 5 - 9 ", (IdRange(5, 9),)),
        ([5, 9], (IdRange(5, 9),)),
        (["1-2", "7", "10,12"], (IdRange(1, 2), IdRange(7, 7), IdRange(10, 12))),
        (f"1-{MAX}", (IdRange(1, MAX),)),
        ("", ()),
        ([], ()),
    ],
)
def test_every_form_parses(value: object, expected: tuple[IdRange, ...]) -> None:
    assert parse_ranges(value, "driver.stream_id_range") == expected


@pytest.mark.parametrize(
    ("value", "key", "problem"),
    [
        ("0-5", "driver.x", "1 <= first <= last"),
        ("9-5", "driver.x", "got 9-5"),
        (f"1-{MAX + 1}", "driver.x", "<= 4294967295"),
        ([0, 5], "driver.x", "1 <= first"),
        ([1, 2, 3], "driver.x", "must be [first, last], got 3 values"),
        ([5], "driver.x", "got 1 values"),
        (["1-2", "x"], "driver.x[1]", "invalid range 'x'"),
        (["1-2", 3], "driver.x", "two integers or only range strings"),
        ([True, 5], "driver.x", "two integers or only range strings"),
        ("a-b", "driver.x", "invalid range 'a-b'"),
        ("-5", "driver.x", "invalid range '-5'"),
        ("1-2-3", "driver.x", "invalid range '1-2-3'"),
        ("1.5", "driver.x", "invalid range '1.5'"),
        (12, "driver.x", "got an integer"),
        ({"a": 1}, "driver.x", "got a table"),
    ],
)
def test_bad_forms_name_the_key(value: object, key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_ranges(value, "driver.x")
    assert info.value.key == key
    assert problem in info.value.problem


ranges = st.integers(1, MAX).flatmap(lambda a: st.tuples(st.just(a), st.integers(a, MAX)))


@given(ranges)
def test_every_form_of_a_range_round_trips(bounds: tuple[int, int]) -> None:
    first, last = bounds
    expected = (IdRange(first, last),)
    assert parse_ranges(f"{first}-{last}", "k") == expected
    assert parse_ranges(f"{first},{last}", "k") == expected
    assert parse_ranges([first, last], "k") == expected
    assert parse_ranges([f"{first}-{last}"], "k") == expected
    assert parse_ranges(format_ranges(expected), "k") == expected
    assert parse_ranges(str(IdRange(first, last)), "k") == expected


@given(st.lists(ranges, min_size=1, max_size=5))
def test_arrays_of_range_strings_keep_their_order(bounds: list[tuple[int, int]]) -> None:
    parsed = parse_ranges([f"{a}-{b}" for a, b in bounds], "k")
    assert parsed == tuple(IdRange(a, b) for a, b in bounds)


def test_membership_and_size() -> None:
    r = IdRange(10, 12)
    assert [v in r for v in (9, 10, 12, 13)] == [False, True, True, False]
    assert len(r) == 3
    assert in_ranges((IdRange(1, 2), r), 11)
    assert not in_ranges((), 11)
    assert format_ranges((IdRange(1, 2), IdRange(5, 5))) == "1-2, 5"


def test_range_forms_in_a_file(load: Load) -> None:
    text = (
        """
[driver]
stream_id_range = "20000"
descriptor_stream_id_range = "31000,31001"
control_stream_id_range = [32000, 32001]
"""
        + MINIMAL
    )
    d = load(text).driver
    assert d.stream_id_range == (IdRange(20000, 20000),)
    assert d.descriptor_stream_id_range == (IdRange(31000, 31001),)
    assert d.control_stream_id_range == (IdRange(32000, 32001),)


@pytest.mark.parametrize(
    ("driver", "key", "problem"),
    [
        (
            'stream_id_range = "900-1100"',
            "driver.stream_id_range",
            "contains driver.control_stream_id 1000",
        ),
        (
            'announce_stream_id = 1001\ndescriptor_stream_id_range = "1001"',
            "driver.descriptor_stream_id_range",
            "contains driver.announce_stream_id 1001",
        ),
        (
            'control_stream_id_range = ["1-10", "1200-1300"]',
            "driver.control_stream_id_range[1]",
            "contains driver.qos_stream_id 1200",
        ),
        (
            'stream_id_range = "9000-10000"',
            "driver.stream_id_range",
            "contains streams.s.stream_id 10000",
        ),
        (
            'stream_id_range = "20000-29999"\ndescriptor_stream_id_range = "29999-30000"',
            "driver.descriptor_stream_id_range",
            "overlaps driver.stream_id_range 20000-29999",
        ),
        (
            'stream_id_range = ["20000-20010", "20005-20020"]',
            "driver.stream_id_range[1]",
            "overlaps driver.stream_id_range[0] 20000-20010",
        ),
        (
            'stream_id_range = "20000-29999"\ncontrol_stream_id_range = "25000"',
            "driver.control_stream_id_range",
            "overlaps driver.stream_id_range",
        ),
    ],
)
def test_ranges_must_be_disjoint_and_free_of_reserved_ids(
    load: Load, driver: str, key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(f"[driver]\n{driver}\n" + MINIMAL)
    assert info.value.key == key
    assert problem in info.value.problem


def test_adjacent_ranges_do_not_overlap(load: Load) -> None:
    text = '[driver]\nstream_id_range = ["20000-20009", "20010-20019"]\n' + MINIMAL
    assert len(load(text).driver.stream_id_range) == 2
