"""Lease ids (§3.4, A-11) and node ids (§3.3, A-12)."""

from actors.driver.ids import NODE_ID_MAX, LeaseIdAllocator, NodeIdAllocator


class TestLeaseIds:
    def test_first_id_is_seed_plus_one_then_sequential(self) -> None:
        ids = LeaseIdAllocator(seed=41)
        assert [ids.next() for _ in range(3)] == [42, 43, 44]

    def test_random_seed_keeps_within_int63(self) -> None:
        first = LeaseIdAllocator().next()
        assert 0 < first <= 2**63

    def test_zero_is_skipped_on_wrap(self) -> None:
        ids = LeaseIdAllocator(seed=2**64 - 2)
        assert [ids.next(), ids.next()] == [2**64 - 1, 1]


class TestNodeIds:
    def test_round_robin_from_one(self) -> None:
        nodes = NodeIdAllocator(cooldown_ns=0)
        assert [nodes.allocate(0) for _ in range(3)] == [1, 2, 3]

    def test_released_id_cools_down_then_is_reusable(self) -> None:
        nodes = NodeIdAllocator(cooldown_ns=1000)
        assert nodes.allocate(0) == 1
        nodes.release(1, now_ns=10)
        assert not nodes.is_available(1, now_ns=1009)
        assert nodes.is_available(1, now_ns=1010)

    def test_cursor_skips_active_and_cooling_ids(self) -> None:
        nodes = NodeIdAllocator(cooldown_ns=1000)
        assert nodes.reserve(2, 0)
        one = nodes.allocate(0)
        nodes.release(one or 0, 0)  # 1 cools down
        assert nodes.allocate(0) == 3  # 2 active, cursor already past 1
        assert nodes.allocate(0) == 4

    def test_zero_and_null_are_never_available(self) -> None:
        nodes = NodeIdAllocator(cooldown_ns=0)
        assert not nodes.is_available(0, 0)
        assert not nodes.is_available(0xFFFFFFFF, 0)
        assert not nodes.reserve(0xFFFFFFFF, 0)

    def test_cursor_wraps_to_one_after_max(self) -> None:
        nodes = NodeIdAllocator(cooldown_ns=0)
        assert nodes.reserve(1, 0)
        nodes._cursor = NODE_ID_MAX
        assert nodes.allocate(0) == NODE_ID_MAX
        assert nodes.allocate(0) == 2

    def test_desired_id_in_cooldown_is_refused(self) -> None:
        nodes = NodeIdAllocator(cooldown_ns=5)
        assert nodes.reserve(9, 0)
        nodes.release(9, 0)
        assert not nodes.reserve(9, 4)
        assert nodes.reserve(9, 5)

    def test_unreserve_skips_cooldown(self) -> None:
        nodes = NodeIdAllocator(cooldown_ns=1000)
        node = nodes.allocate(0)
        assert node is not None
        nodes.unreserve(node)
        assert nodes.is_available(node, 0)

    def test_zero_cooldown_disables_it(self) -> None:
        nodes = NodeIdAllocator(cooldown_ns=0)
        assert nodes.reserve(5, 0)
        nodes.release(5, 0)
        assert nodes.is_available(5, 0)
