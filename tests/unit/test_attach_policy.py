"""decide_attach: every check of driver-behaviour.md §3, in order, with exact codes and texts."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pytest

from actors.driver.attach_policy import (
    AttachContext,
    AttachPlan,
    Reject,
    decide_attach,
    decide_hugepages,
)
from actors.driver.ids import NodeIdAllocator
from actors.driver.stream_ids import RangeAllocator
from actors.testing import small_config
from messages.control import HugepagesPolicy, ResponseCode, Role
from tensorpool_config.model import DriverConfig, IdRange
from tests.unit.helpers import attach_request

if TYPE_CHECKING:
    from pathlib import Path

INVALID = ResponseCode.INVALID_PARAMS
REJECTED = ResponseCode.REJECTED


@dataclass(frozen=True, slots=True)
class StreamFacts:
    """A plain ``StreamView``."""

    profile_name: str
    epoch: int
    hugepages: bool
    producer_busy: bool


def context(
    config: DriverConfig,
    *,
    clients: frozenset[int] = frozenset(),
    streams: dict[int, StreamFacts] | None = None,
    nodes: NodeIdAllocator | None = None,
    capable: bool = False,
) -> AttachContext:
    table = {10000: StreamFacts("tiny", 0, False, False)} if streams is None else streams
    return AttachContext(
        config=config,
        clients_in_use=clients,
        streams=table,
        dynamic_ids=RangeAllocator(config.driver.stream_id_range, table.__contains__),
        node_ids=nodes or NodeIdAllocator(0),
        hugepages_capable=capable,
    )


@pytest.fixture
def cfg(tmp_path: Path) -> DriverConfig:
    return small_config(tmp_path)


def reject(decision: Reject | AttachPlan) -> tuple[ResponseCode, str]:
    assert isinstance(decision, Reject), decision
    return decision.code, decision.text


def test_ok_plan_for_an_existing_stream(cfg: DriverConfig) -> None:
    plan = decide_attach(attach_request(), context(cfg), 0)
    assert plan == AttachPlan(
        stream_id=10000,
        role=Role.PRODUCER,
        profile="tiny",
        create_dynamic=False,
        desired_node_id=None,
    )


@pytest.mark.parametrize(
    ("fields", "ctx_args", "expected"),
    [
        ({"role": 3}, {}, (INVALID, "invalid role")),
        ({"role": 255}, {}, (INVALID, "invalid role")),
        ({"client_id": 0}, {}, (INVALID, "client_id must be non-zero")),
        ({"publish_mode": 3}, {}, (ResponseCode.UNSUPPORTED, "unsupported publish_mode")),
        ({"publish_mode": 0}, {}, (ResponseCode.UNSUPPORTED, "unsupported publish_mode")),
        ({"require_hugepages": 3}, {}, (INVALID, "unknown hugepages policy")),
        ({"require_hugepages": 255}, {}, (INVALID, "unknown hugepages policy")),
        ({}, {"clients": frozenset({7})}, (REJECTED, "client_id already attached")),
        ({"expected_layout_version": 2}, {}, (REJECTED, "layout_version mismatch")),
        ({"stream_id": 555}, {}, (REJECTED, "stream not provisioned")),
        ({"desired_node_id": 0}, {}, (REJECTED, "node_id unavailable")),
        (
            {"require_hugepages": HugepagesPolicy.HUGEPAGES},
            {},
            (REJECTED, "hugepages not available"),
        ),
        (
            {"require_hugepages": HugepagesPolicy.STANDARD},
            {"capable": True},
            (REJECTED, "standard pages requested"),
        ),
    ],
)
def test_each_check_code_and_text(
    cfg: DriverConfig, fields: dict[str, Any], ctx_args: dict[str, Any], expected: tuple[Any, str]
) -> None:
    assert reject(decide_attach(attach_request(**fields), context(cfg, **ctx_args), 0)) == expected


def test_checks_run_in_the_table_order(cfg: DriverConfig) -> None:
    """Each request fails two checks; the earlier one in the table answers."""
    ctx = context(cfg, clients=frozenset({7}))
    assert reject(decide_attach(attach_request(role=9), ctx, 0))[1] == "invalid role"
    assert reject(decide_attach(attach_request(client_id=0, publish_mode=9), ctx, 0))[1] == (
        "client_id must be non-zero"
    )
    assert reject(decide_attach(attach_request(publish_mode=9, require_hugepages=9), ctx, 0))[
        1
    ] == ("unsupported publish_mode")
    assert reject(decide_attach(attach_request(require_hugepages=9), ctx, 0))[1] == (
        "unknown hugepages policy"
    )
    assert reject(decide_attach(attach_request(expected_layout_version=3), ctx, 0))[1] == (
        "client_id already attached"
    )
    busy = {10000: StreamFacts("tiny", 5, False, True)}
    ctx = context(cfg, streams=busy)
    assert reject(decide_attach(attach_request(expected_layout_version=3), ctx, 0))[1] == (
        "layout_version mismatch"
    )
    both = attach_request(require_hugepages=HugepagesPolicy.HUGEPAGES)
    assert reject(decide_attach(both, ctx, 0))[1] == "producer already attached"
    nodes = NodeIdAllocator(0)
    nodes.reserve(3, 0)
    ctx = context(cfg, nodes=nodes)
    hp = attach_request(require_hugepages=HugepagesPolicy.HUGEPAGES, desired_node_id=3)
    assert reject(decide_attach(hp, ctx, 0))[1] == "hugepages not available"
    assert (
        reject(decide_attach(attach_request(desired_node_id=3), ctx, 0))[1] == "node_id unavailable"
    )


def test_layout_version_one_is_accepted(cfg: DriverConfig) -> None:
    assert isinstance(
        decide_attach(attach_request(expected_layout_version=1), context(cfg), 0), AttachPlan
    )


def test_consumer_may_join_a_stream_with_a_producer(cfg: DriverConfig) -> None:
    ctx = context(cfg, streams={10000: StreamFacts("tiny", 5, False, True)})
    assert isinstance(decide_attach(attach_request(role=Role.CONSUMER), ctx, 0), AttachPlan)


def test_null_publish_mode_means_require_existing(cfg: DriverConfig) -> None:
    assert reject(decide_attach(attach_request(stream_id=20005), context(cfg), 0)) == (
        REJECTED,
        "stream not provisioned",
    )
    plan = decide_attach(attach_request(stream_id=20005, publish_mode=2), context(cfg), 0)
    assert isinstance(plan, AttachPlan)
    assert (plan.stream_id, plan.create_dynamic, plan.profile) == (20005, True, "tiny")


def test_dynamic_stream_zero_or_outside_range_is_allocated(cfg: DriverConfig) -> None:
    for requested in (0, 55555):
        plan = decide_attach(attach_request(stream_id=requested, publish_mode=2), context(cfg), 0)
        assert isinstance(plan, AttachPlan)
        assert plan.stream_id == 20000


def test_dynamic_streams_disabled(tmp_path: Path) -> None:
    cfg = small_config(tmp_path, policies={"allow_dynamic_streams": False})
    assert reject(decide_attach(attach_request(stream_id=0, publish_mode=2), context(cfg), 0)) == (
        REJECTED,
        "stream not provisioned",
    )


def test_dynamic_stream_without_range(cfg: DriverConfig) -> None:
    no_range = replace(cfg, driver=replace(cfg.driver, stream_id_range=()))
    assert reject(
        decide_attach(attach_request(stream_id=0, publish_mode=2), context(no_range), 0)
    ) == (
        INVALID,
        "stream_id_range not configured",
    )


def test_dynamic_range_exhausted(cfg: DriverConfig) -> None:
    small = replace(cfg, driver=replace(cfg.driver, stream_id_range=(IdRange(20000, 20000),)))
    streams = {20000: StreamFacts("tiny", 1, False, False)}
    decision = decide_attach(
        attach_request(stream_id=0, publish_mode=2), context(small, streams=streams), 0
    )
    assert reject(decision) == (INVALID, "stream_id_range exhausted")


def test_dynamic_profile_not_found(cfg: DriverConfig) -> None:
    bad = replace(cfg, policies=replace(cfg.policies, default_profile="nope"))
    assert reject(decide_attach(attach_request(stream_id=0, publish_mode=2), context(bad), 0)) == (
        INVALID,
        "profile not found",
    )


def test_profile_without_pools(cfg: DriverConfig) -> None:
    tiny = cfg.profiles["tiny"]
    bad = replace(cfg, profiles={"tiny": replace(tiny, payload_pools=())})
    assert reject(decide_attach(attach_request(), context(bad), 0)) == (
        INVALID,
        "stream has no payload pools",
    )


def test_desired_node_id_granted_when_free(cfg: DriverConfig) -> None:
    plan = decide_attach(attach_request(desired_node_id=42), context(cfg), 0)
    assert isinstance(plan, AttachPlan)
    assert plan.desired_node_id == 42
    plan = decide_attach(attach_request(desired_node_id=0xFFFFFFFF), context(cfg), 0)
    assert isinstance(plan, AttachPlan)
    assert plan.desired_node_id is None


def test_decision_has_no_side_effects(cfg: DriverConfig) -> None:
    nodes = NodeIdAllocator(0)
    streams: dict[int, StreamFacts] = {}
    ctx = context(cfg, streams=streams, nodes=nodes)
    decide_attach(attach_request(stream_id=0, publish_mode=2, desired_node_id=4), ctx, 0)
    assert streams == {}
    assert nodes.active == frozenset()


class TestHugepages:
    U, S, H = HugepagesPolicy.UNSPECIFIED, HugepagesPolicy.STANDARD, HugepagesPolicy.HUGEPAGES

    def test_unspecified_follows_the_capability(self) -> None:
        assert decide_hugepages(self.U, False, False, None) is False
        assert decide_hugepages(self.U, False, True, None) is True

    def test_unspecified_with_shm_require_needs_hugetlbfs(self) -> None:
        assert decide_hugepages(self.U, True, False, None) == Reject(
            REJECTED, "hugepages not available"
        )
        assert decide_hugepages(self.U, True, True, None) is True

    def test_standard_refused_when_config_requires_hugepages(self) -> None:
        assert decide_hugepages(self.S, True, True, None) == Reject(
            REJECTED, "standard pages requested"
        )

    def test_must_agree_with_a_provisioned_stream(self) -> None:
        stream = StreamFacts("tiny", 5, True, False)
        assert decide_hugepages(self.H, False, True, stream) is True
        standard = StreamFacts("tiny", 5, False, False)
        assert decide_hugepages(self.H, False, True, standard) == Reject(
            REJECTED, "hugepages not available"
        )
