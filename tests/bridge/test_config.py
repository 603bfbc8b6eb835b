"""bridge.md §3: keys, Julia defaults, environment overrides, §3.6 validation, one-line errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tensorpool_bridge.config import BridgeConfig, load_bridge_config, parse_bridge_config
from tensorpool_config import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

NETWORK = """
[bridge]
payload_channel = "aeron:udp?endpoint=127.0.0.1:40456"
payload_stream_id = 3000
control_channel = "aeron:udp?endpoint=127.0.0.1:40457"
control_stream_id = 3001
forward_metadata = false
{extra}
[[mappings]]
source_stream_id = 10000
dest_stream_id = 20000
{mapping}
"""

ENV: dict[str, str] = {"AERON_DIR": "/tmp/aeron-x", "XDG_RUNTIME_DIR": "/tmp/run"}


def parse(extra: str = "", mapping: str = "",
          env: dict[str, str] | None = None) -> BridgeConfig:
    return parse_bridge_config(NETWORK.format(extra=extra, mapping=mapping),
                               env=ENV if env is None else env)


def test_julia_defaults() -> None:
    cfg = parse()
    assert cfg.instance_id == "bridge-01"
    assert cfg.role == "both"
    assert (cfg.mtu_bytes, cfg.chunk_bytes, cfg.max_chunk_bytes) == (0, 0, 65535)
    assert cfg.max_payload_bytes == 1 << 30
    assert cfg.assembly_timeout_ms == 250
    assert not cfg.integrity_crc32c
    assert not (cfg.forward_qos)
    assert not (cfg.forward_progress)
    assert not (cfg.forward_tracelink)
    assert cfg.effective_chunk_bytes == 65535
    assert cfg.aeron_dir == "/tmp/aeron-x"
    assert cfg.local_channel == "aeron:ipc?term-length=4m"
    assert (cfg.local_descriptor_stream_id, cfg.local_metadata_stream_id) == (1100, 1300)
    assert cfg.mappings[0].metadata_stream_id == 20000
    assert cfg.run_dir.name == "bridge-01"


def test_forward_metadata_defaults_to_true_and_needs_the_channel() -> None:
    text = NETWORK.replace("forward_metadata = false", "").format(extra="", mapping="")
    with pytest.raises(ConfigError, match=r"bridge\.metadata_channel"):
        parse_bridge_config(text, env=ENV)


def test_environment_overrides_bridge_scalars() -> None:
    cfg = parse(env={**ENV, "BRIDGE_PAYLOAD_STREAM_ID": "4000",
                     "BRIDGE_INTEGRITY_CRC32C": "TRUE"})
    assert cfg.payload_stream_id == 4000
    assert cfg.integrity_crc32c


def test_recommended_mixed_setting() -> None:
    cfg = parse("mtu_bytes = 1408\nchunk_bytes = 1024\nmax_chunk_bytes = 1024")
    assert cfg.effective_chunk_bytes == 1024


def test_max_chunk_above_mtu_is_clamped_not_refused() -> None:
    assert parse("mtu_bytes = 1408").effective_chunk_bytes == 1280


@pytest.mark.parametrize(("extra", "mapping", "key"), [
    ('role = "relay"', "", "bridge.role"),
    ("mtu_bytes = 100", "", "bridge.mtu_bytes"),
    ("mtu_bytes = 1408\nchunk_bytes = 1300", "", "bridge.chunk_bytes"),
    ("chunk_bytes = 2000\nmax_chunk_bytes = 1000", "", "bridge.chunk_bytes"),
    ("assembly_timeout_ms = 0", "", "bridge.assembly_timeout_ms"),
    ("max_payload_bytes = 0", "", "bridge.max_payload_bytes"),
    ("forward_progress = true", "", "mappings[0].source_control_stream_id"),
    ('dest_stream_id_range = "2990-3010"', "", "bridge.dest_stream_id_range"),
    ("", "[[mappings]]\nsource_stream_id = 10001\ndest_stream_id = 20000",
     "mappings[1].dest_stream_id"),
    ("", "[[mappings]]\nsource_stream_id = 10000\ndest_stream_id = 20000", "mappings[1]"),
    ("", "[[mappings]]\nsource_stream_id = 10001", "mappings[1].dest_stream_id"),
    ("", "[[mappings]]\nsource_stream_id = 7\ndest_stream_id = 7", "mappings[1].dest_stream_id"),
])
def test_invalid_configurations_name_the_key(extra: str, mapping: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(extra, mapping)
    assert info.value.key == key
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("value", ["0", "x"])
def test_invalid_environment_values_name_the_variable(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(env={**ENV, "BRIDGE_PAYLOAD_STREAM_ID": value})
    assert info.value.key.startswith("BRIDGE_PAYLOAD_STREAM_ID")


def test_role_specific_rules() -> None:
    cfg = parse('role = "receiver"\nforward_progress = true',
                "dest_control_stream_id = 1201")
    assert cfg.receives
    assert not cfg.sends


def test_bad_toml_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "b.toml"
    bad.write_text("[bridge\nx = 1\n")
    with pytest.raises(ConfigError) as info:
        load_bridge_config(bad, env=ENV)
    assert "invalid TOML" in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="cannot read"):
        load_bridge_config(tmp_path / "missing.toml", env=ENV)


def test_driver_file_supplies_the_local_endpoints(tmp_path: Path) -> None:
    driver = tmp_path / "driver.toml"
    driver.write_text('[driver]\naeron_dir = "/tmp/aeron-b"\ncontrol_channel = '
                      '"aeron:ipc?term-length=1m"\ncontrol_stream_id = 1500\n'
                      '[profiles.p]\nheader_nslots = 8\n'
                      'payload_pools = [{ pool_id = 1, stride_bytes = 4096 }]\n'
                      '[streams.s]\nstream_id = 10000\nprofile = "p"\n')
    bridge = tmp_path / "bridge.toml"
    bridge.write_text(NETWORK.format(extra="", mapping=""))
    cfg = load_bridge_config(bridge, driver_config=driver, env={"XDG_RUNTIME_DIR": "/tmp/r"})
    assert cfg.driver.aeron_dir == cfg.aeron_dir == "/tmp/aeron-b"
    assert cfg.driver.control_stream_id == 1500
    assert cfg.driver.keepalive_interval_ms == 1000
    assert cfg.local_channel == "aeron:ipc?term-length=1m"
