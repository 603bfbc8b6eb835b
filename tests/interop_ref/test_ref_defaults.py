"""The built-in configuration must serve the C example programs with no config file.

Facts about the C examples (tensor_pool_c, examples/tp_example_{producer,consumer}_driver.c):
control stream 1000, announce stream 1001, descriptor 1100, QoS 1200, metadata 1300, all on
the one channel given with -c; region paths must canonicalise under /dev/shm or /tmp; files
must have no 'other' permission bits; the producer writes a 16-byte tensor into the first
pool; client keepalive 1 s with a local lease deadline of 3 intervals; attach timeout 2 s.
"""

from __future__ import annotations

import logging
import os

import pytest

from tensorpool_config import default_config, parse_config
from tests.interop_ref import peer_rules

MINIMAL = (
    '[shm]\npermissions_mode = "{mode}"\n[profiles.p]\nheader_nslots = 8\n'
    'payload_pools = [{{ pool_id = 1, stride_bytes = 64 }}]\n'
    '[streams.s]\nstream_id = 1\nprofile = "p"\n'
)

C_EXAMPLE_PAYLOAD_BYTES = 16
C_EXAMPLE_STREAM = 10000


def test_endpoints_match_the_c_example_context() -> None:
    cfg = default_config(env={})
    assert cfg.driver.control_stream_id == 1000
    assert cfg.driver.announce_stream_id == 1001
    assert cfg.driver.qos_stream_id == 1200
    # Explicit term-length on our side: a C client joining with plain aeron:ipc still matches.
    assert cfg.driver.control_channel == "aeron:ipc?term-length=4m"
    assert cfg.driver.announce_channel == cfg.driver.control_channel


def test_stream_10000_is_static_and_fits_the_example_frame() -> None:
    cfg = default_config(env={})
    by_id = {s.stream_id: s for s in cfg.streams.values()}
    profile = cfg.profiles[by_id[C_EXAMPLE_STREAM].profile]
    first = profile.payload_pools[0]
    assert first.stride_bytes >= C_EXAMPLE_PAYLOAD_BYTES
    assert profile.header_nslots & (profile.header_nslots - 1) == 0
    # Both examples send EXISTING_OR_CREATE; a static stream answers them without relying on
    # the dynamic range (10000 is outside 20000-29999 and would be renumbered).
    assert all(not (r.first <= C_EXAMPLE_STREAM <= r.last) for r in cfg.driver.stream_id_range)


def test_region_location_and_mode_satisfy_the_c_example_allowlist() -> None:
    cfg = default_config(env={})
    real = os.path.realpath(cfg.shm.base_dir)
    assert any(real == a or real.startswith(a + "/") for a in peer_rules.C_EXAMPLE_ALLOWED)
    assert cfg.shm.permissions_mode & peer_rules.C_FORBIDDEN_MODE == 0


def test_lease_timing_matches_the_client_assumptions() -> None:
    cfg = default_config(env={})
    # C client: keepalive every 1 s, local deadline now + 1 s x 3; the driver's must not be
    # shorter or a healthy client would be expired by the driver first.
    assert cfg.policies.lease_keepalive_interval_ms == 1000
    assert cfg.policies.lease_expiry_grace_intervals >= 3
    # C consumer freshness window = 3 x its announce period (1 s): announce at least that often.
    assert cfg.policies.announce_period_ms <= 1000


@pytest.mark.parametrize("mode", ["664", "666", "644", "775"])
def test_world_accessible_modes_are_warned_about(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    text = MINIMAL.format(mode=mode)
    with caplog.at_level(logging.WARNING, logger="config"):
        cfg = parse_config(text, env={})
    assert cfg.shm.permissions_mode == int(mode, 8)
    assert any("shm.permissions_mode" in r.getMessage() for r in caplog.records)


def test_private_and_group_modes_are_not_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    for mode in ("600", "660", "640"):
        text = MINIMAL.format(mode=mode)
        with caplog.at_level(logging.WARNING, logger="config"):
            parse_config(text, env={})
    assert not [r for r in caplog.records if "permissions_mode" in r.getMessage()]
