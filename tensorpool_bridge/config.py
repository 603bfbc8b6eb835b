"""The bridge's TOML: the reference ``[bridge]`` / ``[[mappings]]`` keys (bridge.md §3).

Defaults are those the Julia loader reads; environment variables override ``[bridge]``
scalars (``BRIDGE_PAYLOAD_STREAM_ID``), mapping keys have none. The local driver's endpoints
come from the driver's own TOML (``--driver-config``) or its built-in defaults. Reading goes
through ``tensorpool_config.Table``, so every problem is one ``ConfigError`` line naming the
key, exactly as for the driver's configuration.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from tensorpool_bridge.chunking import effective_chunk_bytes
from tensorpool_config import ConfigError, IdRange, default_config, default_run_dir, load_config
from tensorpool_config.loader import parse_toml, read_text
from tensorpool_config.table import Table, type_name

if TYPE_CHECKING:
    from collections.abc import Mapping

    from tensorpool_config import DriverConfig

log = logging.getLogger(__name__)

ROLES: Final = ("sender", "receiver", "both")
U32_MAX: Final = 2**32 - 1
I32_MAX: Final = 2**31 - 1
_KNOWN_TABLES: Final = frozenset({"bridge", "mappings"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Mapping_:  # noqa: N801 - "Mapping" is the collections ABC
    """One ``source_stream_id -> dest_stream_id`` pair (§3.3)."""

    source_stream_id: int
    dest_stream_id: int
    profile: str
    metadata_stream_id: int
    source_control_stream_id: int
    dest_control_stream_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalDriver:
    """The endpoints of the local tensorpool driver (§3.1: from its TOML or its defaults)."""

    aeron_dir: str
    control_channel: str
    control_stream_id: int
    announce_channel: str
    announce_stream_id: int
    qos_channel: str
    qos_stream_id: int
    allowed_base_dirs: tuple[Path, ...]
    keepalive_interval_ms: int
    """``policies.lease_keepalive_interval_ms`` of the local driver (§5.1 step 3)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeConfig:
    instance_id: str
    role: str
    aeron_dir: str
    payload_channel: str
    payload_stream_id: int
    control_channel: str
    control_stream_id: int
    metadata_channel: str
    metadata_stream_id: int
    source_metadata_stream_id: int
    mtu_bytes: int
    chunk_bytes: int
    max_chunk_bytes: int
    max_payload_bytes: int
    integrity_crc32c: bool
    assembly_timeout_ms: int
    forward_metadata: bool
    forward_tracelink: bool
    forward_qos: bool
    forward_progress: bool
    dest_stream_id_range: tuple[IdRange, ...]
    local_channel: str
    local_descriptor_stream_id: int
    local_metadata_stream_id: int
    attach_timeout_ms: int
    attach_backoff_ms: int
    run_dir: Path
    mappings: tuple[Mapping_, ...]
    driver: LocalDriver

    @property
    def effective_chunk_bytes(self) -> int:
        """``C`` of §3.5: the sender's chunk size and the receiver's bound on chunkLength."""
        return effective_chunk_bytes(self.mtu_bytes, self.chunk_bytes, self.max_chunk_bytes)

    @property
    def sends(self) -> bool:
        return self.role in ("sender", "both")

    @property
    def receives(self) -> bool:
        return self.role in ("receiver", "both")


def load_bridge_config(
    path: Path | str, *, driver_config: Path | str | None = None,
    env: Mapping[str, str] = os.environ,
) -> BridgeConfig:
    """Read and validate the bridge TOML (and the local driver's TOML when given)."""
    path = Path(path)
    text = read_text(path)
    driver = load_config(driver_config, env) if driver_config is not None else default_config(env)
    return parse_bridge_config(text, source=str(path), driver=driver, env=env)


def parse_bridge_config(
    text: str, *, source: str = "<string>", driver: DriverConfig | None = None,
    env: Mapping[str, str] = os.environ,
) -> BridgeConfig:
    """Parse ``text``; any failure is a one-line ``ConfigError``."""
    raw = parse_toml(text, source)
    for name in raw:
        if name not in _KNOWN_TABLES:
            log.warning("bridge config: unknown table [%s] ignored", name)
    return _build(raw, driver if driver is not None else default_config(env), env)


def _build(raw: Mapping[str, object], driver: DriverConfig, env: Mapping[str, str]) -> BridgeConfig:
    t = Table(raw.get("bridge", {}), "bridge", env)
    local = _local_driver(driver, env)
    instance_id = t.string("instance_id", "bridge-01")
    role = t.string("role", "both")
    if role not in ROLES:
        raise t.fail("role", f'must be "sender", "receiver" or "both", got {role!r}')
    aeron_dir = t.string("aeron_dir", "") or local.aeron_dir
    cfg = BridgeConfig(
        instance_id=instance_id,
        role=role,
        aeron_dir=aeron_dir,
        payload_channel=t.string("payload_channel", ""),
        payload_stream_id=t.integer("payload_stream_id", 0, lo=-(2**31), hi=I32_MAX),
        control_channel=t.string("control_channel", ""),
        control_stream_id=t.integer("control_stream_id", 0, lo=-(2**31), hi=I32_MAX),
        metadata_channel=t.string("metadata_channel", ""),
        metadata_stream_id=t.integer("metadata_stream_id", 0, lo=-(2**31), hi=I32_MAX),
        source_metadata_stream_id=t.integer(
            "source_metadata_stream_id", 0, lo=-(2**31), hi=I32_MAX
        ),
        mtu_bytes=t.integer("mtu_bytes", 0, lo=0, hi=U32_MAX),
        chunk_bytes=t.integer("chunk_bytes", 0, lo=0, hi=U32_MAX),
        max_chunk_bytes=t.integer("max_chunk_bytes", 65535, lo=0, hi=U32_MAX),
        max_payload_bytes=t.integer("max_payload_bytes", 1 << 30, lo=0, hi=U32_MAX),
        integrity_crc32c=t.boolean("integrity_crc32c", default=False),
        assembly_timeout_ms=t.integer("assembly_timeout_ms", 250, lo=0, hi=U32_MAX),
        forward_metadata=t.boolean("forward_metadata", default=True),
        forward_tracelink=t.boolean("forward_tracelink", default=False),
        forward_qos=t.boolean("forward_qos", default=False),
        forward_progress=t.boolean("forward_progress", default=False),
        dest_stream_id_range=t.ranges("dest_stream_id_range"),
        local_channel=t.string("local_channel", local.control_channel),
        local_descriptor_stream_id=t.integer(
            "local_descriptor_stream_id", 1100, lo=1, hi=I32_MAX
        ),
        local_metadata_stream_id=t.integer("local_metadata_stream_id", 1300, lo=1, hi=I32_MAX),
        attach_timeout_ms=t.integer("attach_timeout_ms", 2000, lo=1, hi=3_600_000),
        attach_backoff_ms=t.integer("attach_backoff_ms", 1000, lo=1, hi=3_600_000),
        run_dir=Path(t.string("run_dir", "") or default_run_dir(instance_id, env)),
        mappings=_mappings(raw.get("mappings", [])),
        driver=local,
    )
    t.warn_unknown()
    _validate(cfg, t)
    return cfg


def _local_driver(driver: DriverConfig, env: Mapping[str, str]) -> LocalDriver:
    d = driver.driver
    aeron_dir = env.get("AERON_DIR") or d.aeron_dir
    if not aeron_dir:
        import pyaeron  # noqa: PLC0415 - only for Aeron's default directory

        aeron_dir = pyaeron.default_path()
    return LocalDriver(
        aeron_dir=aeron_dir,
        control_channel=d.control_channel, control_stream_id=d.control_stream_id,
        announce_channel=d.announce_channel, announce_stream_id=d.announce_stream_id,
        qos_channel=d.qos_channel, qos_stream_id=d.qos_stream_id,
        allowed_base_dirs=driver.shm.allowed_base_dirs,
        keepalive_interval_ms=driver.policies.lease_keepalive_interval_ms,
    )


def _mappings(raw: object) -> tuple[Mapping_, ...]:
    if not isinstance(raw, list):
        raise ConfigError("mappings", f"must be an array of tables ([[mappings]]), got "
                          f"{type_name(raw)}")
    out = []
    for index, entry in enumerate(raw):
        m = Table(entry, f"mappings[{index}]", None)
        dest = m.integer("dest_stream_id", 0, lo=0, hi=U32_MAX)
        out.append(Mapping_(
            source_stream_id=m.integer("source_stream_id", 0, lo=0, hi=U32_MAX),
            dest_stream_id=dest,
            profile=m.string("profile", ""),
            metadata_stream_id=m.integer("metadata_stream_id", dest, lo=0, hi=U32_MAX),
            source_control_stream_id=m.integer("source_control_stream_id", 0, lo=-(2**31),
                                               hi=I32_MAX),
            dest_control_stream_id=m.integer("dest_control_stream_id", 0, lo=-(2**31),
                                             hi=I32_MAX),
        ))
        m.warn_unknown()
    return tuple(out)


def _validate(cfg: BridgeConfig, t: Table) -> None:  # noqa: C901, PLR0912 - one branch per rule of §3.6
    """§3.6 with the Python differences; rules of one role only are skipped for the other."""
    if not cfg.payload_channel:
        raise t.fail("payload_channel", "must be set")
    if cfg.payload_stream_id == 0:
        raise t.fail("payload_stream_id", "must be non-zero")
    if not cfg.control_channel:
        raise t.fail("control_channel", "must be set")
    if cfg.control_stream_id == 0:
        raise t.fail("control_stream_id", "must be non-zero")
    if cfg.forward_metadata or cfg.forward_tracelink:
        what = ("when forward_metadata or forward_tracelink is on (set forward_metadata = "
                "false to run without a metadata channel)")
        if not cfg.metadata_channel:
            raise t.fail("metadata_channel", f"must be set {what}")
        if cfg.metadata_stream_id == 0:
            raise t.fail("metadata_stream_id", f"must be non-zero {what}")
        if cfg.sends and cfg.source_metadata_stream_id == 0:
            raise t.fail("source_metadata_stream_id", f"must be non-zero {what}")
    if cfg.max_payload_bytes == 0:
        raise t.fail("max_payload_bytes", "must be non-zero")
    if not (cfg.chunk_bytes or cfg.max_chunk_bytes or cfg.mtu_bytes):
        raise t.fail("max_chunk_bytes", "one of chunk_bytes, max_chunk_bytes, mtu_bytes "
                     "must be non-zero")
    if 0 < cfg.mtu_bytes <= 128:
        raise t.fail("mtu_bytes", f"must be above 128, got {cfg.mtu_bytes}")
    if cfg.mtu_bytes:
        limit = cfg.mtu_bytes - 128
        if cfg.chunk_bytes > limit:
            raise t.fail("chunk_bytes", f"must be at most mtu_bytes - 128 = {limit}")
        if cfg.max_chunk_bytes > limit:
            log.warning("bridge config: max_chunk_bytes %d > mtu_bytes - 128 = %d: clamped "
                        "(B-5)", cfg.max_chunk_bytes, limit)
    if cfg.max_chunk_bytes and cfg.chunk_bytes > cfg.max_chunk_bytes:
        raise t.fail("chunk_bytes", "must be at most max_chunk_bytes")
    if cfg.max_payload_bytes < cfg.chunk_bytes:
        raise t.fail("max_payload_bytes", "must be at least chunk_bytes")
    if cfg.effective_chunk_bytes > 65535:
        raise t.fail("max_chunk_bytes", "the effective chunk size must be at most 65535")
    if cfg.assembly_timeout_ms == 0:
        raise t.fail("assembly_timeout_ms", "must be non-zero")
    _validate_range(cfg, t)
    _validate_mappings(cfg)


def _validate_range(cfg: BridgeConfig, t: Table) -> None:
    for r in cfg.dest_stream_id_range:
        for name in ("payload_stream_id", "control_stream_id", "metadata_stream_id"):
            if getattr(cfg, name) in r:
                raise t.fail("dest_stream_id_range", f"contains {name} {getattr(cfg, name)}")


def _validate_mappings(cfg: BridgeConfig) -> None:  # noqa: C901 - one branch per rule of §3.6
    if not cfg.mappings:
        raise ConfigError("mappings", "at least one [[mappings]] table is needed")
    pairs: set[tuple[int, int]] = set()
    dests: set[int] = set()
    control = cfg.forward_qos or cfg.forward_progress
    for index, m in enumerate(cfg.mappings):
        key = f"mappings[{index}]"
        if m.source_stream_id == 0:
            raise ConfigError(f"{key}.source_stream_id", "must be non-zero")
        if m.dest_stream_id == 0:
            raise ConfigError(f"{key}.dest_stream_id", "must be non-zero (dynamic destination "
                              "streams are not supported, B-17)")
        if m.dest_stream_id == m.source_stream_id:
            raise ConfigError(f"{key}.dest_stream_id", "must differ from source_stream_id")
        if m.dest_stream_id > I32_MAX:
            raise ConfigError(f"{key}.dest_stream_id", f"must be at most {I32_MAX}")
        if control and cfg.sends and m.source_control_stream_id == 0:
            raise ConfigError(f"{key}.source_control_stream_id",
                              "must be non-zero when forward_qos or forward_progress is on")
        if control and cfg.receives and m.dest_control_stream_id == 0:
            raise ConfigError(f"{key}.dest_control_stream_id",
                              "must be non-zero when forward_qos or forward_progress is on")
        for r in cfg.dest_stream_id_range:
            if m.dest_control_stream_id in r or m.metadata_stream_id in r:
                raise ConfigError(key, "dest_control_stream_id and metadata_stream_id must "
                                  "lie outside dest_stream_id_range")
        pair = (m.source_stream_id, m.dest_stream_id)
        if pair in pairs:
            raise ConfigError(key, f"duplicate mapping {pair[0]} -> {pair[1]}")
        if m.dest_stream_id in dests:
            raise ConfigError(f"{key}.dest_stream_id",
                              f"{m.dest_stream_id} is the destination of another mapping")
        pairs.add(pair)
        dests.add(m.dest_stream_id)
