"""Every key of every table reaches its field, with the types of the contract."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tensorpool_config import AdminSection, DriverConfig, IdRange, PoolSpec, Profile, StreamSpec
from tests.config.helpers import MINIMAL, Load

PUBLIC = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
SECRET = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
CLIENT = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"


def full_text(tmp: Path) -> str:
    return f"""
[driver]
instance_id = "cam-host"
aeron_dir = "/dev/shm/aeron-test"
control_channel = "aeron:udp?endpoint=localhost:40123"
control_stream_id = 2000
announce_channel = "aeron:udp?endpoint=localhost:40124"
announce_stream_id = 2001
qos_channel = "aeron:ipc"
qos_stream_id = 2200
stream_id_range = "20000-20009"
descriptor_stream_id_range = [31000, 31010]
control_stream_id_range = ["32000-32009", "33000"]

[shm]
base_dir = "{tmp}/shm"
namespace = "lab_1-a"
require_hugepages = true
page_size_bytes = 2097152
permissions_mode = "640"
allowed_base_dirs = ["{tmp}/shm", "{tmp}/other"]

[policies]
allow_dynamic_streams = true
default_profile = "big"
announce_period_ms = 250
lease_keepalive_interval_ms = 500
lease_expiry_grace_intervals = 4
node_id_reuse_cooldown_ms = 0
prefault_shm = false
mlock_shm = true
reuse_existing_shm = true
cleanup_shm_on_exit = true
epoch_gc_enabled = false
epoch_gc_keep = 5
epoch_gc_min_age_ns = 123
epoch_gc_on_startup = true
shutdown_timeout_ms = 0
shutdown_token = "s3cret"

[profiles.small]
header_nslots = 8
header_slot_bytes = 256
payload_pools = [ {{ pool_id = 3, stride_bytes = 64 }}, {{ pool_id = 1, stride_bytes = 128 }} ]

[profiles.big]
header_nslots = 1

[[profiles.big.payload_pools]]
pool_id = 65535
stride_bytes = 2147483648

[streams.a]
stream_id = 10000
profile = "small"

[streams.b]
stream_id = 4294967295
profile = "big"

[streams.c]
stream_id = 1

[admin]
enabled = false
run_dir = "{tmp}/run"
tcp_endpoint = "tcp://127.0.0.1:5555"
curve_public_key = "{PUBLIC}"
curve_secret_key = "{SECRET}"
curve_authorized_clients = ["{CLIENT}"]
"""


@pytest.fixture
def full(load: Load, tmp_path: Path) -> DriverConfig:
    return load(full_text(tmp_path))


def test_driver_keys(full: DriverConfig) -> None:
    d = full.driver
    assert d.instance_id == "cam-host"
    assert d.aeron_dir == "/dev/shm/aeron-test"
    assert d.control_channel == "aeron:udp?endpoint=localhost:40123"
    assert d.control_stream_id == 2000
    assert d.announce_channel == "aeron:udp?endpoint=localhost:40124"
    assert d.announce_stream_id == 2001
    assert (d.qos_channel, d.qos_stream_id) == ("aeron:ipc", 2200)
    assert d.stream_id_range == (IdRange(20000, 20009),)
    assert d.descriptor_stream_id_range == (IdRange(31000, 31010),)
    assert d.control_stream_id_range == (IdRange(32000, 32009), IdRange(33000, 33000))


def test_shm_keys(full: DriverConfig, tmp_path: Path) -> None:
    s = full.shm
    assert s.base_dir == tmp_path / "shm"
    assert s.namespace == "lab_1-a"
    assert s.require_hugepages is True
    assert s.page_size_bytes == 2097152
    assert s.permissions_mode == 0o640
    real = Path(os.path.realpath(tmp_path))
    assert s.allowed_base_dirs == (real / "shm", real / "other")


def test_policies_keys(full: DriverConfig) -> None:
    p = full.policies
    assert p.allow_dynamic_streams is True
    assert p.default_profile == "big"
    assert p.announce_period_ms == 250
    assert p.lease_keepalive_interval_ms == 500
    assert p.lease_expiry_grace_intervals == 4
    assert p.node_id_reuse_cooldown_ms == 0
    assert (p.prefault_shm, p.mlock_shm) == (False, True)
    assert (p.reuse_existing_shm, p.cleanup_shm_on_exit) == (True, True)
    assert (p.epoch_gc_enabled, p.epoch_gc_keep, p.epoch_gc_min_age_ns) == (False, 5, 123)
    assert p.epoch_gc_on_startup is True
    assert p.shutdown_timeout_ms == 0
    assert p.shutdown_token == "s3cret"


def test_profiles_keep_file_order_and_pool_order(full: DriverConfig) -> None:
    assert list(full.profiles) == ["small", "big"]
    assert full.profiles["small"] == Profile("small", 8, 256, (PoolSpec(3, 64), PoolSpec(1, 128)))
    assert full.profiles["big"] == Profile("big", 1, 256, (PoolSpec(65535, 2**31),))


def test_streams(full: DriverConfig) -> None:
    assert list(full.streams.values()) == [
        StreamSpec("a", 10000, "small"),
        StreamSpec("b", 2**32 - 1, "big"),
        StreamSpec("c", 1, "big"),  # no profile key: policies.default_profile
    ]


def test_admin_keys(full: DriverConfig, tmp_path: Path) -> None:
    assert full.admin == AdminSection(
        enabled=False,
        run_dir=tmp_path / "run",
        tcp_endpoint="tcp://127.0.0.1:5555",
        curve_public_key=PUBLIC,
        curve_secret_key=SECRET,
        curve_authorized_clients=(CLIENT,),
    )


def test_inline_and_array_of_tables_pools_are_the_same(load: Load) -> None:
    inline = load(MINIMAL)
    tables = load("""
[[profiles.p.payload_pools]]
pool_id = 1
stride_bytes = 65536

[streams.s]
stream_id = 10000
profile = "p"
""")
    assert inline == tables


def test_default_profile_is_the_first_profile_in_file_order(load: Load) -> None:
    text = """
[profiles.zeta]
payload_pools = [{ pool_id = 1, stride_bytes = 64 }]
[profiles.alpha]
payload_pools = [{ pool_id = 1, stride_bytes = 64 }]
[policies]
allow_dynamic_streams = true
"""
    cfg = load(text)
    assert cfg.policies.default_profile == "zeta"
    assert dict(cfg.streams) == {}  # dynamic streams allowed: no static stream needed


@pytest.mark.parametrize(
    ("period", "min_age", "expected_period", "expected_min_age"),
    [
        (0, 0, 1000, 3_000_000_000),
        (250, 0, 250, 750_000_000),
        (0, 5, 1000, 5),
        (40, 1, 40, 1),
    ],
)
def test_announce_period_and_gc_min_age_are_resolved(
    load: Load, period: int, min_age: int, expected_period: int, expected_min_age: int
) -> None:
    text = f"[policies]\nannounce_period_ms = {period}\nepoch_gc_min_age_ns = {min_age}\n"
    p = load(text + MINIMAL).policies
    assert (p.announce_period_ms, p.epoch_gc_min_age_ns) == (expected_period, expected_min_age)


@pytest.mark.parametrize(
    ("text", "mode"),
    [("660", 0o660), ("0660", 0o660), ("0o640", 0o640), ("777", 0o777), ("0", 0), ("600", 0o600)],
)
def test_permissions_mode_is_octal(load: Load, text: str, mode: int) -> None:
    assert load(f'[shm]\npermissions_mode = "{text}"\n' + MINIMAL).shm.permissions_mode == mode


def test_allowed_base_dirs_are_canonicalised(load: Load, tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    text = f'[shm]\nbase_dir = "{tmp_path}/link/x"\nallowed_base_dirs = ["{tmp_path}/link"]\n'
    shm = load(text + MINIMAL).shm
    assert shm.allowed_base_dirs == (Path(os.path.realpath(tmp_path / "real")),)
    assert shm.base_dir == tmp_path / "link" / "x"  # as written; containment resolves it


def test_allowed_base_dirs_default_to_the_canonical_base_dir(load: Load, tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    shm = load(f'[shm]\nbase_dir = "{tmp_path}/link"\n' + MINIMAL).shm
    assert shm.allowed_base_dirs == (Path(os.path.realpath(tmp_path / "real")),)
