"""Readers for [profiles.<name>] and [streams.<name>] (file only: names are not env-safe)."""

from __future__ import annotations

import logging
import os

from tensorpool_config.errors import ConfigError
from tensorpool_config.model import PoolSpec, Profile, StreamSpec
from tensorpool_config.table import Table, type_name

UINT32_MAX = 2**32 - 1
HEADER_SLOT_BYTES = 256  # fixed by the SHM layout (SlotHeader + embedded TensorHeader)
MIN_STRIDE_BYTES = 64
MAX_STRIDE_BYTES = 2**31  # largest power of two in the uint32 wire field
MAX_POOL_ID = 65535

log = logging.getLogger("config")


def read_profiles(raw: object) -> dict[str, Profile]:
    top = Table(raw, "profiles", None)
    profiles: dict[str, Profile] = {}
    for name in _names(raw):
        profiles[name] = _read_profile(Table(top.raw(name, {}), f"profiles.{name}", None), name)
    if not profiles:
        raise ConfigError("profiles", "at least one [profiles.<name>] table is required")
    return profiles


def read_streams(
    raw: object, profiles: dict[str, Profile], default_profile: str
) -> dict[str, StreamSpec]:
    top = Table(raw, "streams", None)
    streams: dict[str, StreamSpec] = {}
    owners: dict[int, str] = {}
    for name in _names(raw):
        t = Table(top.raw(name, {}), f"streams.{name}", None)
        if not t.has("stream_id"):
            raise ConfigError(t.key("stream_id"), "is required")
        stream_id = t.integer("stream_id", 0, lo=1, hi=UINT32_MAX)
        if stream_id in owners:
            raise t.fail("stream_id", f"{stream_id} is already used by streams.{owners[stream_id]}")
        owners[stream_id] = name
        profile = t.string("profile", default_profile)
        if profile not in profiles:
            known = ", ".join(profiles)
            raise t.fail("profile", f"no profile named {profile!r} (known: {known})")
        t.warn_unknown()
        streams[name] = StreamSpec(name, stream_id, profile)
    return streams


def _names(raw: object) -> list[str]:
    return list(raw) if isinstance(raw, dict) else []


def _read_profile(t: Table, name: str) -> Profile:
    header_nslots = t.integer("header_nslots", 1024, lo=1, hi=UINT32_MAX)
    if not _power_of_two(header_nslots):
        raise t.fail("header_nslots", f"must be a power of two, got {header_nslots}")
    header_slot_bytes = t.integer("header_slot_bytes", HEADER_SLOT_BYTES, lo=0, hi=UINT32_MAX)
    if header_slot_bytes != HEADER_SLOT_BYTES:
        raise t.fail("header_slot_bytes", f"must be {HEADER_SLOT_BYTES}, got {header_slot_bytes}")
    pools_raw = t.raw("payload_pools", [])
    if not isinstance(pools_raw, list):
        raise t.fail("payload_pools", f"must be an array of tables, got {type_name(pools_raw)}")
    if not pools_raw:
        raise t.fail("payload_pools", "at least one pool is required")
    pools: list[PoolSpec] = []
    for index, pool_raw in enumerate(pools_raw):
        pool = _read_pool(Table(pool_raw, f"{t.path}.payload_pools[{index}]", None))
        if any(p.pool_id == pool.pool_id for p in pools):
            raise ConfigError(
                f"{t.path}.payload_pools[{index}].pool_id",
                f"{pool.pool_id} is already used in this profile",
            )
        pools.append(pool)
        _warn_unmappable_stride(name, index, pool)
    t.warn_unknown()
    return Profile(name, header_nslots, header_slot_bytes, tuple(pools))


def _read_pool(t: Table) -> PoolSpec:
    for required in ("pool_id", "stride_bytes"):
        if not t.has(required):
            raise ConfigError(t.key(required), "is required")
    pool_id = t.integer("pool_id", 0, lo=1, hi=MAX_POOL_ID)
    stride = t.integer("stride_bytes", 0, lo=-(2**63), hi=2**63 - 1)
    if stride < MIN_STRIDE_BYTES or not _power_of_two(stride):
        raise t.fail("stride_bytes", f"must be a power of two >= 64, got {stride}")
    if stride > MAX_STRIDE_BYTES:
        raise t.fail("stride_bytes", f"must be at most {MAX_STRIDE_BYTES} (uint32), got {stride}")
    t.warn_unknown()
    return PoolSpec(pool_id, stride)


def _warn_unmappable_stride(profile: str, index: int, pool: PoolSpec) -> None:
    """The spec allows any power of two >= 64, but the C and Julia clients also require
    ``stride % page size == 0`` and refuse to map the pool otherwise: accepted, said aloud."""
    page = os.sysconf("SC_PAGE_SIZE")
    if pool.stride_bytes % page:
        log.warning(
            "config: profiles.%s.payload_pools[%d] (pool_id %d): stride_bytes %d is not a "
            "multiple of the page size %d; C and Julia clients will refuse to map this pool",
            profile, index, pool.pool_id, pool.stride_bytes, page,
        )


def _power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0
