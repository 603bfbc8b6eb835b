"""Readers for the fixed tables: [driver], [shm], [policies] and our own [admin].

Defaults are driver-behaviour.md §13 (A-16 where spec and code differ); each reader reads
every key it knows, so that anything left over is reported as unknown.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from tensorpool_config.model import AdminSection, DriverSection, Policies, ShmSection
from tensorpool_config.rundir import default_run_dir

if TYPE_CHECKING:
    from collections.abc import Mapping

    from tensorpool_config.table import Table

log = logging.getLogger("config")

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1
MS_MAX = INT32_MAX  # ~24.8 days: beyond that a timeout is a typo, not a policy

DEFAULT_CHANNEL = "aeron:ipc?term-length=4m"
DEFAULT_BASE_DIR = "/dev/shm"  # noqa: S108 - the SHM root, not a temporary file
DEFAULT_ANNOUNCE_PERIOD_MS = 1000
_NAMESPACE = re.compile(r"[A-Za-z0-9_-]+")
_URI_FORBIDDEN = (" ", "|", "?")  # characters a region URI path may not hold (shm-layout §6)
_OTHER_BITS = 0o007  # the mode bits C clients forbid on region files by default
_Z85_ALPHABET = frozenset(
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
)
_Z85_KEY_LENGTH = 40  # a 32-byte CURVE key in Z85


def read_driver(t: Table) -> DriverSection:
    control_channel = _channel(t, "control_channel", DEFAULT_CHANNEL)
    control_stream_id = t.integer("control_stream_id", 1000, lo=INT32_MIN, hi=INT32_MAX)
    section = DriverSection(
        instance_id=t.string("instance_id", "driver-01"),
        aeron_dir=t.string("aeron_dir", ""),
        control_channel=control_channel,
        control_stream_id=control_stream_id,
        # The announce endpoint defaults to the control endpoint (after overrides of it).
        announce_channel=_channel(t, "announce_channel", control_channel),
        announce_stream_id=t.integer(
            "announce_stream_id", control_stream_id, lo=INT32_MIN, hi=INT32_MAX
        ),
        qos_channel=_channel(t, "qos_channel", DEFAULT_CHANNEL),
        qos_stream_id=t.integer("qos_stream_id", 1200, lo=INT32_MIN, hi=INT32_MAX),
        stream_id_range=t.ranges("stream_id_range"),
        descriptor_stream_id_range=t.ranges("descriptor_stream_id_range"),
        control_stream_id_range=t.ranges("control_stream_id_range"),
    )
    t.warn_unknown()
    return section


def read_shm(t: Table) -> ShmSection:
    base_dir = _absolute(t, "base_dir", t.string("base_dir", DEFAULT_BASE_DIR))
    _uri_safe(t, "base_dir", str(base_dir))
    namespace = t.string("namespace", "default")
    if _NAMESPACE.fullmatch(namespace) is None:
        raise t.fail("namespace", f"must match [A-Za-z0-9_-]+, got {namespace!r}")
    require_hugepages = t.boolean("require_hugepages", default=False)
    page_size_bytes = t.integer("page_size_bytes", 4096, lo=1, hi=UINT32_MAX)
    permissions_mode = t.octal("permissions_mode", "660", hi=0o777)
    if permissions_mode & _OTHER_BITS:
        # C clients refuse by default to map a region file with any 'other' bit set.
        log.warning(
            "config: %s = %o gives 'other' users access; C clients will refuse to map "
            "such regions (use 660 or 600)", t.key("permissions_mode"), permissions_mode
        )
    allowed = t.strings("allowed_base_dirs", (str(base_dir),))
    if not allowed:
        raise t.fail("allowed_base_dirs", "must not be empty (omit it to allow base_dir)")
    allowed_dirs = tuple(
        Path(os.path.realpath(_absolute(t, "allowed_base_dirs", d))) for d in allowed
    )
    real_base = Path(os.path.realpath(base_dir))
    _uri_safe(t, "base_dir", str(real_base), resolved=True)  # provisioning uses the real path
    if not any(real_base == d or d in real_base.parents for d in allowed_dirs):
        raise t.fail("base_dir", f"{base_dir} is outside shm.allowed_base_dirs")
    t.warn_unknown()
    return ShmSection(
        base_dir=base_dir,
        namespace=namespace,
        require_hugepages=require_hugepages,
        page_size_bytes=page_size_bytes,
        permissions_mode=permissions_mode,
        allowed_base_dirs=allowed_dirs,
    )


def read_policies(t: Table, profile_names: list[str]) -> Policies:
    allow_dynamic_streams = t.boolean("allow_dynamic_streams", default=False)
    # Julia's rule: without an explicit default the first profile in file order is used.
    default_profile = t.string("default_profile", profile_names[0] if profile_names else "")
    if default_profile not in profile_names:
        # Not fatal: driver-behaviour.md §3.1 answers each attach that would create a dynamic
        # stream with INVALID_PARAMS "profile not found", so the driver must still start.
        log.warning(
            "config: %s names no profile (%r; known: %s); attaches that would create a "
            "dynamic stream will be refused with 'profile not found'",
            t.label("default_profile"),
            default_profile,
            ", ".join(profile_names),
        )
    announce_period_ms = (
        t.integer("announce_period_ms", DEFAULT_ANNOUNCE_PERIOD_MS, lo=0, hi=MS_MAX)
        or DEFAULT_ANNOUNCE_PERIOD_MS
    )
    epoch_gc_min_age_ns = t.integer("epoch_gc_min_age_ns", 0, lo=0, hi=UINT64_MAX)
    policies = Policies(
        allow_dynamic_streams=allow_dynamic_streams,
        default_profile=default_profile,
        announce_period_ms=announce_period_ms,
        lease_keepalive_interval_ms=t.integer("lease_keepalive_interval_ms", 1000, lo=1, hi=MS_MAX),
        lease_expiry_grace_intervals=t.integer(
            "lease_expiry_grace_intervals", 3, lo=1, hi=INT32_MAX
        ),
        node_id_reuse_cooldown_ms=t.integer("node_id_reuse_cooldown_ms", 1000, lo=0, hi=MS_MAX),
        prefault_shm=t.boolean("prefault_shm", default=True),
        mlock_shm=t.boolean("mlock_shm", default=False),
        reuse_existing_shm=t.boolean("reuse_existing_shm", default=False),
        cleanup_shm_on_exit=t.boolean("cleanup_shm_on_exit", default=False),
        epoch_gc_enabled=t.boolean("epoch_gc_enabled", default=True),
        epoch_gc_keep=t.integer("epoch_gc_keep", 2, lo=0, hi=INT32_MAX),
        epoch_gc_min_age_ns=epoch_gc_min_age_ns or 3 * announce_period_ms * 1_000_000,
        epoch_gc_on_startup=t.boolean("epoch_gc_on_startup", default=False),
        shutdown_timeout_ms=t.integer("shutdown_timeout_ms", 2000, lo=0, hi=MS_MAX),
        shutdown_token=t.string("shutdown_token", ""),
    )
    t.warn_unknown()
    return policies


def read_admin(t: Table, instance_id: str, env: Mapping[str, str]) -> AdminSection:
    enabled = t.boolean("enabled", default=True)
    run_dir_text = t.string("run_dir", "")
    run_dir = (
        _absolute(t, "run_dir", run_dir_text) if run_dir_text else default_run_dir(instance_id, env)
    )
    tcp_endpoint = t.string("tcp_endpoint", "")
    if tcp_endpoint and not tcp_endpoint.startswith("tcp://"):
        raise t.fail("tcp_endpoint", f"must be empty or a tcp:// endpoint, got {tcp_endpoint!r}")
    public_key = _z85_key(t, "curve_public_key", t.string("curve_public_key", ""))
    secret_key = _z85_key(t, "curve_secret_key", t.string("curve_secret_key", ""))
    clients = t.strings("curve_authorized_clients", ())
    for i, client in enumerate(clients):
        _z85_key(t, "curve_authorized_clients", client, index=i)
    if bool(public_key) != bool(secret_key):
        raise t.fail("curve_secret_key", "curve_public_key and curve_secret_key go together")
    if clients and not public_key:
        raise t.fail("curve_authorized_clients", "needs curve_public_key and curve_secret_key")
    t.warn_unknown()
    return AdminSection(
        enabled=enabled,
        run_dir=run_dir,
        tcp_endpoint=tcp_endpoint,
        curve_public_key=public_key,
        curve_secret_key=secret_key,
        curve_authorized_clients=clients,
    )


def _channel(t: Table, name: str, default: str) -> str:
    channel = t.string(name, default)
    if not channel.startswith(("aeron:", "aeron-spy:")):
        raise t.fail(name, f"must be an Aeron channel URI (aeron:...), got {channel!r}")
    return channel


def _absolute(t: Table, name: str, text: str) -> Path:
    if not text.startswith("/"):
        raise t.fail(name, f"must be an absolute path, got {text!r}")
    if "\x00" in text:
        raise t.fail(name, "must not contain a NUL character")
    return Path(text)


def _uri_safe(t: Table, name: str, path: str, *, resolved: bool = False) -> None:
    """Region URIs carry the path verbatim and may not contain these (shm-layout.md §6).

    Caught here, a bad base dir stops start-up; missed, it would fail every attach.
    """
    bad = " or ".join(repr(ch) for ch in _URI_FORBIDDEN if ch in path)
    if bad:
        where = f"resolves to {path!r}, which " if resolved else ""
        raise t.fail(
            name,
            f"{where}contains {bad}; region URI paths (shm:file?path=...) may not hold "
            "spaces, '|' or '?'",
        )


def _z85_key(t: Table, name: str, key: str, index: int | None = None) -> str:
    if key and (len(key) != _Z85_KEY_LENGTH or not set(key) <= _Z85_ALPHABET):
        where = "" if index is None else f" (entry {index})"
        raise t.fail(name, f"must be a 40-character Z85 CURVE key{where}")
    return key
