"""Key and value forms used by the reference drivers' example configurations load here.

The configurations below are written for this test; they exercise every form found in the
reference example files: inline pool arrays and arrays of tables, a [supervisor] table with
its per-consumer keys, a profile ``max_dims`` key, plain ``aeron:ipc`` channels, announce on
the control stream, a base dir that does not exist yet, ``epoch_gc_min_age_ns`` in ns, and
``allow_dynamic_streams`` without ``stream_id_range``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tensorpool_config import load_config

if TYPE_CHECKING:
    from pathlib import Path

COMMON_DRIVER = """\
[driver]
instance_id = "ref"
aeron_dir = ""
control_channel = "aeron:ipc?term-length=4m"
control_stream_id = 1000
announce_channel = "aeron:ipc?term-length=4m"
announce_stream_id = 1001
qos_channel = "aeron:ipc?term-length=4m"
qos_stream_id = 1200
stream_id_range = "20000-29999"
descriptor_stream_id_range = "31000-31999"
control_stream_id_range = "32000-32999"
"""

C_STYLE = COMMON_DRIVER + """
[shm]
base_dir = "/dev/shm"
namespace = "default"
require_hugepages = false
page_size_bytes = 4096
permissions_mode = "660"
allowed_base_dirs = ["/dev/shm"]

[policies]
allow_dynamic_streams = false
default_profile = "cam"
announce_period_ms = 1000
lease_keepalive_interval_ms = 1000
lease_expiry_grace_intervals = 3
node_id_reuse_cooldown_ms = 1000

[profiles.cam]
header_nslots = 64
payload_pools = [
  { pool_id = 1, stride_bytes = 1048576 }
]

[streams.cam1]
stream_id = 10000
profile = "cam"

[supervisor]
control_channel = "aeron:ipc?term-length=4m"
control_stream_id = 1000
consumer_capacity = 256
per_consumer_enabled = true
per_consumer_descriptor_base = 31000
per_consumer_descriptor_range = 1000
force_no_shm = false
force_mode = 0
payload_fallback_uri = ""
"""

JULIA_STYLE = """\
[driver]
instance_id = "ref"
control_channel = "aeron:ipc"
control_stream_id = 1000
announce_channel = "aeron:ipc"
announce_stream_id = 1000
qos_channel = "aeron:ipc"
qos_stream_id = 1200

[shm]
base_dir = "/dev/shm/ref-not-created"
require_hugepages = false
permissions_mode = "660"

[policies]
allow_dynamic_streams = true
default_profile = "raw"
epoch_gc_enabled = true
epoch_gc_keep = 2
epoch_gc_min_age_ns = 3000000000
shutdown_timeout_ms = 2000
shutdown_token = ""

[profiles.raw]
header_nslots = 1024
max_dims = 8
header_slot_bytes = 256

[[profiles.raw.payload_pools]]
pool_id = 1
stride_bytes = 1048576

[[profiles.raw.payload_pools]]
pool_id = 2
stride_bytes = 4194304

[streams]

[streams.cam1]
stream_id = 1001
profile = "raw"
"""


def test_c_style_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(C_STYLE)
    cfg = load_config(path, env={})
    assert cfg.streams["cam1"].stream_id == 10000
    assert cfg.profiles["cam"].payload_pools[0].stride_bytes == 1 << 20
    assert cfg.driver.announce_stream_id == 1001
    assert [(r.first, r.last) for r in cfg.driver.descriptor_stream_id_range] == [(31000, 31999)]


def test_julia_style_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "jl.toml"
    path.write_text(JULIA_STYLE)
    cfg = load_config(path, env={})
    assert cfg.driver.announce_stream_id == cfg.driver.control_stream_id == 1000
    assert [p.stride_bytes for p in cfg.profiles["raw"].payload_pools] == [1 << 20, 1 << 22]
    assert cfg.policies.epoch_gc_min_age_ns == 3_000_000_000
    assert cfg.policies.allow_dynamic_streams
    assert cfg.driver.stream_id_range == ()
    assert str(cfg.shm.allowed_base_dirs[0]).endswith("ref-not-created")
