"""The built-in configuration: what the driver runs with when no file is given.

It mirrors the reference drivers' example configuration and is parsed by the same loader
as any file (one code path). examples/driver.toml is the same configuration with every key
written out and explained; a test keeps the two equal.
"""

from __future__ import annotations

DEFAULT_CONFIG_TOML = """\
[driver]
instance_id = "driver-01"
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

[shm]
base_dir = "/dev/shm"
namespace = "default"
require_hugepages = false
page_size_bytes = 4096
permissions_mode = "660"

[policies]
allow_dynamic_streams = true
default_profile = "default"

[profiles.default]
header_nslots = 64
header_slot_bytes = 256
payload_pools = [
  { pool_id = 1, stride_bytes = 4096 },
  { pool_id = 2, stride_bytes = 65536 },
]

[streams.default]
stream_id = 10000
profile = "default"

[admin]
enabled = true
"""
