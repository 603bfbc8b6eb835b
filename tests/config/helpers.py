"""Text and types shared by the configuration tests."""

from __future__ import annotations

from collections.abc import Callable

from tensorpool_config import DriverConfig

# The smallest valid file: one profile, one static stream (a stride every page size divides).
MINIMAL = """
[profiles.p]
payload_pools = [{ pool_id = 1, stride_bytes = 65536 }]

[streams.s]
stream_id = 10000
profile = "p"
"""

# The ``load`` fixture (conftest.py): TOML text and an optional environment to a DriverConfig.
Load = Callable[..., DriverConfig]
