"""The typed, validated driver configuration (field names are the TOML key names)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path


@dataclass(frozen=True, slots=True, order=True)
class IdRange:
    """An inclusive range of ids, ``first <= last``."""

    first: int
    last: int

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and self.first <= value <= self.last

    def __len__(self) -> int:
        return self.last - self.first + 1

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


def in_ranges(ranges: Iterable[IdRange], value: int) -> bool:
    """True when ``value`` lies in one of ``ranges`` (an empty tuple means "no range")."""
    return any(value in r for r in ranges)


@dataclass(frozen=True, slots=True)
class PoolSpec:
    pool_id: int
    stride_bytes: int


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    header_nslots: int
    header_slot_bytes: int
    payload_pools: tuple[PoolSpec, ...]


@dataclass(frozen=True, slots=True)
class StreamSpec:
    name: str
    stream_id: int
    profile: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DriverSection:
    instance_id: str
    aeron_dir: str
    control_channel: str
    control_stream_id: int
    announce_channel: str
    announce_stream_id: int
    qos_channel: str
    qos_stream_id: int
    stream_id_range: tuple[IdRange, ...]
    descriptor_stream_id_range: tuple[IdRange, ...]
    control_stream_id_range: tuple[IdRange, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ShmSection:
    base_dir: Path
    namespace: str
    require_hugepages: bool
    page_size_bytes: int
    permissions_mode: int
    allowed_base_dirs: tuple[Path, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Policies:
    allow_dynamic_streams: bool
    default_profile: str
    announce_period_ms: int
    lease_keepalive_interval_ms: int
    lease_expiry_grace_intervals: int
    node_id_reuse_cooldown_ms: int
    prefault_shm: bool
    mlock_shm: bool
    reuse_existing_shm: bool
    cleanup_shm_on_exit: bool
    epoch_gc_enabled: bool
    epoch_gc_keep: int
    epoch_gc_min_age_ns: int
    epoch_gc_on_startup: bool
    shutdown_timeout_ms: int
    shutdown_token: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminSection:
    """Our own ``[admin]`` table (status/events plane); the loader always resolves run_dir."""

    enabled: bool = True
    run_dir: Path | None = None
    tcp_endpoint: str = ""
    curve_public_key: str = ""
    curve_secret_key: str = ""
    curve_authorized_clients: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DriverConfig:
    """The whole configuration. ``profiles`` and ``streams`` keep the file order."""

    driver: DriverSection
    shm: ShmSection
    policies: Policies
    profiles: Mapping[str, Profile]
    streams: Mapping[str, StreamSpec]
    admin: AdminSection = field(default_factory=AdminSection)

    def stream_by_id(self, stream_id: int) -> StreamSpec | None:
        """The static stream with this id, if any (ids are unique, checked at load)."""
        return next((s for s in self.streams.values() if s.stream_id == stream_id), None)
