"""Every validation rule fails with a one-line ConfigError naming the dotted key."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tensorpool_config import ConfigError
from tests.config.helpers import MINIMAL, Load

if TYPE_CHECKING:
    from pathlib import Path

POOL = "payload_pools = [{ pool_id = 1, stride_bytes = 64 }]"
STREAM = '[streams.s]\nstream_id = 10000\nprofile = "p"\n'


def profile(body: str) -> str:
    return f"[profiles.p]\n{body}\n" + STREAM


def with_minimal(table: str, body: str) -> str:
    return f"[{table}]\n{body}\n" + MINIMAL


Z85 = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"

CASES = [
    # types
    (
        with_minimal("driver", "control_stream_id = true"),
        "driver.control_stream_id",
        "must be an integer, got a boolean",
    ),
    (
        with_minimal("driver", 'control_stream_id = "1000"'),
        "driver.control_stream_id",
        "must be an integer, got a string",
    ),
    (
        with_minimal("driver", "qos_stream_id = 1.5"),
        "driver.qos_stream_id",
        "must be an integer, got a float",
    ),
    (with_minimal("driver", "instance_id = 3"), "driver.instance_id", "must be a string"),
    (
        with_minimal("policies", 'prefault_shm = "yes"'),
        "policies.prefault_shm",
        "must be true or false, got a string",
    ),
    (
        with_minimal("policies", "mlock_shm = 1"),
        "policies.mlock_shm",
        "must be true or false, got an integer",
    ),
    ("driver = 5\n" + MINIMAL, "driver", "must be a table, got an integer"),
    ("profiles = 5\n", "profiles", "must be a table"),
    ("[profiles]\np = 5\n", "profiles.p", "must be a table"),
    # int ranges
    (
        with_minimal("driver", "control_stream_id = 2147483648"),
        "driver.control_stream_id",
        "must be between -2147483648 and 2147483647, got 2147483648",
    ),
    (
        with_minimal("driver", "announce_stream_id = -2147483649"),
        "driver.announce_stream_id",
        "must be between",
    ),
    (
        with_minimal("policies", "lease_keepalive_interval_ms = 0"),
        "policies.lease_keepalive_interval_ms",
        "must be between 1 and",
    ),
    (
        with_minimal("policies", "lease_expiry_grace_intervals = 0"),
        "policies.lease_expiry_grace_intervals",
        "must be between 1 and",
    ),
    (
        with_minimal("policies", "announce_period_ms = -1"),
        "policies.announce_period_ms",
        "must be between 0 and",
    ),
    (
        with_minimal("policies", "shutdown_timeout_ms = -5"),
        "policies.shutdown_timeout_ms",
        "must be between 0 and",
    ),
    (
        with_minimal("policies", "node_id_reuse_cooldown_ms = -1"),
        "policies.node_id_reuse_cooldown_ms",
        "must be between 0 and",
    ),
    (
        with_minimal("policies", "epoch_gc_keep = -1"),
        "policies.epoch_gc_keep",
        "must be between 0 and",
    ),
    (
        with_minimal("policies", "epoch_gc_min_age_ns = -1"),
        "policies.epoch_gc_min_age_ns",
        "must be between 0 and 18446744073709551615",
    ),
    (with_minimal("shm", "page_size_bytes = 0"), "shm.page_size_bytes", "must be between 1"),
    # channels
    (
        with_minimal("driver", 'control_channel = ""'),
        "driver.control_channel",
        "must be an Aeron channel URI",
    ),
    (
        with_minimal("driver", 'announce_channel = "udp://x"'),
        "driver.announce_channel",
        "must be an Aeron channel URI",
    ),
    (with_minimal("driver", 'qos_channel = ""'), "driver.qos_channel", "Aeron channel"),
    # shm
    (
        with_minimal("shm", 'base_dir = "dev/shm"'),
        "shm.base_dir",
        "must be an absolute path, got 'dev/shm'",
    ),
    (with_minimal("shm", 'base_dir = ""'), "shm.base_dir", "must be an absolute path"),
    (
        with_minimal("shm", 'namespace = "a/b"'),
        "shm.namespace",
        "must match [A-Za-z0-9_-]+, got 'a/b'",
    ),
    (with_minimal("shm", 'namespace = ""'), "shm.namespace", "must match"),
    (with_minimal("shm", 'namespace = "a.b"'), "shm.namespace", "must match"),
    (
        with_minimal("shm", 'permissions_mode = "1777"'),
        "shm.permissions_mode",
        "must be at most 777 (octal)",
    ),
    (
        with_minimal("shm", 'permissions_mode = "668"'),
        "shm.permissions_mode",
        "must be an octal string",
    ),
    (
        with_minimal("shm", "permissions_mode = 660"),
        "shm.permissions_mode",
        'must be an octal string like "660", got an integer',
    ),
    (with_minimal("shm", 'permissions_mode = ""'), "shm.permissions_mode", "octal"),
    (with_minimal("shm", "allowed_base_dirs = []"), "shm.allowed_base_dirs", "must not be empty"),
    (
        with_minimal("shm", 'allowed_base_dirs = "/dev/shm"'),
        "shm.allowed_base_dirs",
        "must be an array of strings",
    ),
    (
        with_minimal("shm", 'allowed_base_dirs = ["rel"]'),
        "shm.allowed_base_dirs",
        "must be an absolute path",
    ),
    (
        with_minimal("shm", 'base_dir = "/srv/shm"\nallowed_base_dirs = ["/dev/shm"]'),
        "shm.base_dir",
        "/srv/shm is outside shm.allowed_base_dirs",
    ),
    (
        with_minimal("shm", 'base_dir = "/dev/shmx"\nallowed_base_dirs = ["/dev/shm"]'),
        "shm.base_dir",
        "outside",
    ),
    # profiles
    ("", "profiles", "at least one [profiles.<name>] table is required"),
    ("[policies]\nallow_dynamic_streams = true\n", "profiles", "at least one"),
    (
        profile(f"header_nslots = 100\n{POOL}"),
        "profiles.p.header_nslots",
        "must be a power of two, got 100",
    ),
    (profile(f"header_nslots = 0\n{POOL}"), "profiles.p.header_nslots", "must be between 1"),
    (
        profile(f"header_slot_bytes = 512\n{POOL}"),
        "profiles.p.header_slot_bytes",
        "must be 256, got 512",
    ),
    (profile("header_nslots = 8"), "profiles.p.payload_pools", "at least one pool is required"),
    (profile("payload_pools = []"), "profiles.p.payload_pools", "at least one pool"),
    (profile("payload_pools = 3"), "profiles.p.payload_pools", "must be an array of tables"),
    (profile("payload_pools = [3]"), "profiles.p.payload_pools[0]", "must be a table"),
    (
        profile("payload_pools = [{ pool_id = 0, stride_bytes = 64 }]"),
        "profiles.p.payload_pools[0].pool_id",
        "must be between 1 and 65535, got 0",
    ),
    (
        profile("payload_pools = [{ pool_id = 65536, stride_bytes = 64 }]"),
        "profiles.p.payload_pools[0].pool_id",
        "must be between 1 and 65535",
    ),
    (
        profile("payload_pools = [{ stride_bytes = 64 }]"),
        "profiles.p.payload_pools[0].pool_id",
        "is required",
    ),
    (
        profile("payload_pools = [{ pool_id = 1 }]"),
        "profiles.p.payload_pools[0].stride_bytes",
        "is required",
    ),
    (
        profile("payload_pools = [{ pool_id = 1, stride_bytes = 32 }]"),
        "profiles.p.payload_pools[0].stride_bytes",
        "must be a power of two >= 64, got 32",
    ),
    (
        profile("payload_pools = [{ pool_id = 1, stride_bytes = 192 }]"),
        "profiles.p.payload_pools[0].stride_bytes",
        "must be a power of two >= 64, got 192",
    ),
    (
        profile("payload_pools = [{ pool_id = 1, stride_bytes = 4294967296 }]"),
        "profiles.p.payload_pools[0].stride_bytes",
        "must be at most 2147483648",
    ),
    (
        profile(
            "payload_pools = [{ pool_id = 2, stride_bytes = 64 }, "
            "{ pool_id = 2, stride_bytes = 128 }]"
        ),
        "profiles.p.payload_pools[1].pool_id",
        "2 is already used in this profile",
    ),
    # streams
    (f"[profiles.p]\n{POOL}\n", "streams", "required when policies.allow_dynamic_streams is false"),
    (
        f"[profiles.p]\n{POOL}\n[streams.s]\nstream_id = 0\n",
        "streams.s.stream_id",
        "must be between 1 and 4294967295, got 0",
    ),
    (
        f"[profiles.p]\n{POOL}\n[streams.s]\nstream_id = 4294967296\n",
        "streams.s.stream_id",
        "must be between 1 and 4294967295",
    ),
    (f'[profiles.p]\n{POOL}\n[streams.s]\nprofile = "p"\n', "streams.s.stream_id", "is required"),
    (
        f"[profiles.p]\n{POOL}\n[streams.a]\nstream_id = 7\n[streams.b]\nstream_id = 7\n",
        "streams.b.stream_id",
        "7 is already used by streams.a",
    ),
    (
        f'[profiles.p]\n{POOL}\n[streams.a]\nstream_id = 7\nprofile = "q"\n',
        "streams.a.profile",
        "no profile named 'q' (known: p)",
    ),
    ("streams = 1\n" + f"[profiles.p]\n{POOL}\n", "streams", "must be a table"),
    # admin
    (
        with_minimal("admin", 'run_dir = "relative/dir"'),
        "admin.run_dir",
        "must be an absolute path",
    ),
    (
        with_minimal("admin", 'tcp_endpoint = "ipc:///x"'),
        "admin.tcp_endpoint",
        "must be empty or a tcp:// endpoint",
    ),
    (
        with_minimal("admin", 'curve_public_key = "short"'),
        "admin.curve_public_key",
        "must be a 40-character Z85 CURVE key",
    ),
    (with_minimal("admin", f'curve_secret_key = "{Z85[:-1]}~"'), "admin.curve_secret_key", "Z85"),
    (with_minimal("admin", f'curve_public_key = "{Z85}"'), "admin.curve_secret_key", "go together"),
    (
        with_minimal("admin", f'curve_authorized_clients = ["{Z85}"]'),
        "admin.curve_authorized_clients",
        "needs curve_public_key",
    ),
    (
        with_minimal("admin", 'curve_authorized_clients = ["bad"]'),
        "admin.curve_authorized_clients",
        "Z85 CURVE key (entry 0)",
    ),
    (with_minimal("admin", "enabled = 1"), "admin.enabled", "must be true or false"),
]


@pytest.mark.parametrize(("text", "key", "problem"), CASES)
def test_rule(load: Load, text: str, key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(text)
    error = info.value
    assert error.key == key
    assert problem in error.problem
    assert str(error) == f"{key}: {error.problem}"
    assert "\n" not in str(error)


def test_the_message_reads_as_one_line_naming_the_key(load: Load) -> None:
    text = """
[profiles.small]
payload_pools = [{ pool_id = 1, stride_bytes = 64 }, { pool_id = 2, stride_bytes = 100 }]
[streams.s]
stream_id = 1
"""
    with pytest.raises(ConfigError) as info:
        load(text)
    assert str(info.value) == (
        "profiles.small.payload_pools[1].stride_bytes: must be a power of two >= 64, got 100"
    )


@pytest.mark.parametrize("char", [" ", "|", "?"])
@pytest.mark.parametrize("where", ["file", "env"])
def test_a_base_dir_no_region_uri_can_carry_is_refused(load: Load, char: str, where: str) -> None:
    """shm-layout.md §6: otherwise every attach would fail when its URI is formed."""
    path = f"/dev/shm/tp{char}x"
    if where == "file":
        text = with_minimal("shm", f'base_dir = "{path}"\nallowed_base_dirs = ["/dev/shm"]')
        env = {}
    else:
        text = with_minimal("shm", 'allowed_base_dirs = ["/dev/shm"]')
        env = {"SHM_BASE_DIR": path}
    with pytest.raises(ConfigError) as info:
        load(text, env)
    assert info.value.key == ("shm.base_dir" if where == "file" else
                              "SHM_BASE_DIR (overrides shm.base_dir)")
    assert f"contains {char!r}" in info.value.problem
    assert "region URI" in info.value.problem


def test_a_base_dir_that_resolves_to_a_path_no_uri_can_carry_is_refused(
    load: Load, tmp_path: Path
) -> None:
    target = tmp_path / "a b"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    text = with_minimal("shm", f'base_dir = "{tmp_path / "link"}"\nallowed_base_dirs = ["/"]')
    with pytest.raises(ConfigError) as info:
        load(text)
    assert info.value.key == "shm.base_dir"
    assert "resolves to" in info.value.problem
    assert "contains ' '" in info.value.problem


@pytest.mark.parametrize("key", ["base_dir", "allowed_base_dirs", "run_dir"])
def test_a_nul_in_a_path_is_a_config_error(load: Load, key: str) -> None:
    table, value = ("admin", '"/a\\u0000b"') if key == "run_dir" else ("shm", '"/a\\u0000b"')
    if key == "allowed_base_dirs":
        value = f"[{value}]"
    with pytest.raises(ConfigError, match="NUL"):
        load(with_minimal(table, f"{key} = {value}"))


def test_base_dir_inside_an_allowed_dir_is_accepted(load: Load) -> None:
    cfg = load(with_minimal("shm", 'base_dir = "/dev/shm/tp"\nallowed_base_dirs = ["/dev/shm"]'))
    assert str(cfg.shm.base_dir) == "/dev/shm/tp"


def test_dynamic_only_configuration_needs_no_stream(load: Load) -> None:
    cfg = load(f"[policies]\nallow_dynamic_streams = true\n[profiles.p]\n{POOL}\n")
    assert dict(cfg.streams) == {}
