"""The lease table and its deadline heap (§5: expiry when now > expiry, strictly)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.driver.lease_table import LeaseRecord, LeaseTable
from messages.control import Role


def record(lease_id: int, client_id: int, expiry: int, stream: int = 1) -> LeaseRecord:
    return LeaseRecord(
        lease_id=lease_id,
        client_id=client_id,
        role=Role.CONSUMER,
        stream_id=stream,
        node_id=lease_id,
        epoch=5,
        expiry_ns=expiry,
    )


def test_expiry_is_strictly_greater() -> None:
    table = LeaseTable()
    table.add(record(1, 10, expiry=100))
    assert table.expired(100) == []
    assert [r.lease_id for r in table.expired(101)] == [1]


def test_touch_moves_the_deadline_and_old_entries_are_stale() -> None:
    table = LeaseTable()
    table.add(record(1, 10, expiry=100))
    table.touch(1, 300)
    assert table.expired(200) == []
    assert [r.lease_id for r in table.expired(301)] == [1]


def test_removed_lease_never_expires() -> None:
    table = LeaseTable()
    table.add(record(1, 10, expiry=100))
    table.remove(1)
    assert table.expired(10**9) == []
    assert table.by_client(10) is None
    assert table.of_stream(1) == ()


def test_sweep_returns_soonest_first_and_leaves_the_rest() -> None:
    table = LeaseTable()
    for i, expiry in enumerate((30, 10, 20, 40), start=1):
        table.add(record(i, 100 + i, expiry))
    due = table.expired(35)
    assert [r.lease_id for r in due] == [2, 3, 1]
    for r in due:
        table.remove(r.lease_id)
    assert [r.lease_id for r in table.expired(41)] == [4]


def test_a_due_lease_the_caller_did_not_remove_is_due_again() -> None:
    table = LeaseTable()
    table.add(record(1, 101, 10))
    table.add(record(2, 102, 20))
    assert [r.lease_id for r in table.expired(25)] == [1, 2]
    table.remove(2)  # the caller ended lease 2 but failed on lease 1
    assert [r.lease_id for r in table.expired(26)] == [1]
    table.remove(1)
    assert table.expired(27) == []


def test_indexes() -> None:
    table = LeaseTable()
    table.add(record(1, 10, 100, stream=7))
    table.add(record(2, 11, 100, stream=7))
    assert table.by_client(11) is not None
    assert {r.lease_id for r in table.of_stream(7)} == {1, 2}
    assert table.epochs_of_stream(7) == frozenset({5})
    assert 1 in table
    assert len(table) == 2


def test_duplicate_client_is_refused() -> None:
    table = LeaseTable()
    table.add(record(1, 10, 100))
    with pytest.raises(ValueError, match="client 10"):
        table.add(record(2, 10, 100))


def test_a_deadline_moved_earlier_is_found_at_its_new_time_and_once() -> None:
    table = LeaseTable()
    table.add(record(1, 10, expiry=500))
    table.touch(1, 200)
    assert table.next_deadline() == 200
    assert [r.lease_id for r in table.expired(300)] == [1]
    table.touch(1, 1000)
    assert table.expired(600) == []  # the old entry at 500 is not a second deadline
    assert table.next_deadline() == 1000
    assert [r.lease_id for r in table.expired(1001)] == [1]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 5), st.integers(0, 1000)),  # (lease, new expiry) or a sweep
        max_size=60,
    )
)
def test_the_deadlines_agree_with_a_plain_scan(ops: list[tuple[int, int]]) -> None:
    table = LeaseTable()
    for i in range(1, 6):
        table.add(record(i, 100 + i, expiry=i * 100))
    for lease_id, value in ops:
        if value % 7 == 0:  # a sweep at `value`, ending what is due
            want = sorted((r.expiry_ns, r.lease_id) for r in table if value > r.expiry_ns)
            got = table.expired(value)
            assert [(r.expiry_ns, r.lease_id) for r in got] == want
            for r in got:
                table.remove(r.lease_id)
        elif lease_id in table:
            table.touch(lease_id, value)
        want_next = min((r.expiry_ns for r in table), default=None)
        assert table.next_deadline() == want_next


def test_keepalives_pop_the_stale_entries_they_make_as_they_go() -> None:
    """A long hold leaves no backlog of stale entries for the first sweep to pop at once."""
    table = LeaseTable()
    n = 1000
    for i in range(n):
        table.add(record(i, 10_000 + i, expiry=3_000 + i))
    for rnd in range(1, 5):  # four rounds of keepalives, each lease in turn
        for i in range(n):
            table.touch(i, 3_000 + rnd * 1_000_000 + i)
    assert len(table._in_order) <= n + 2
    assert table._out_of_order == []  # deadlines in time order need no heap
    assert table.next_deadline() == 3_000 + 4_000_000
