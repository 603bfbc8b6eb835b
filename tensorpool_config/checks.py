"""Start-up checks that span tables (driver-behaviour.md §13: violations are fatal)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tensorpool_config.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from tensorpool_config.model import DriverSection, IdRange, Policies, StreamSpec

RANGE_KEYS = ("stream_id_range", "descriptor_stream_id_range", "control_stream_id_range")


def check_streams_exist(policies: Policies, streams: Mapping[str, StreamSpec]) -> None:
    if not policies.allow_dynamic_streams and not streams:
        raise ConfigError(
            "streams",
            "at least one [streams.<name>] table is required when "
            "policies.allow_dynamic_streams is false",
        )


def check_ranges(driver: DriverSection, streams: Mapping[str, StreamSpec]) -> None:
    """Ranges are disjoint and hold neither a driver endpoint id nor a static stream id."""
    reserved = {
        "driver.control_stream_id": driver.control_stream_id,
        "driver.announce_stream_id": driver.announce_stream_id,
        "driver.qos_stream_id": driver.qos_stream_id,
    } | {f"streams.{s.name}.stream_id": s.stream_id for s in streams.values()}
    seen: list[tuple[str, IdRange]] = []
    for name in RANGE_KEYS:
        ranges: tuple[IdRange, ...] = getattr(driver, name)
        for index, r in enumerate(ranges):
            key = f"driver.{name}" if len(ranges) == 1 else f"driver.{name}[{index}]"
            for owner, value in reserved.items():
                if value in r:
                    raise ConfigError(key, f"range {r} contains {owner} {value}")
            for other_key, other in seen:
                if r.first <= other.last and other.first <= r.last:
                    raise ConfigError(key, f"range {r} overlaps {other_key} {other}")
            seen.append((key, r))
