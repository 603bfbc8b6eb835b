"""The built-in configuration, the spec defaults of a minimal file, and the example files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tensorpool_config import (
    AdminSection,
    DriverConfig,
    DriverSection,
    IdRange,
    Policies,
    PoolSpec,
    Profile,
    ShmSection,
    StreamSpec,
    default_config,
    default_run_dir,
    effective_user_name,
    load_config,
)
from tests.config.helpers import MINIMAL, Load

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


CHANNEL = "aeron:ipc?term-length=4m"


class TestBuiltInConfiguration:
    def test_mirrors_the_reference_example_endpoints(self) -> None:
        d = default_config({}).driver
        assert (d.control_channel, d.control_stream_id) == (CHANNEL, 1000)
        assert (d.announce_channel, d.announce_stream_id) == (CHANNEL, 1001)
        assert (d.qos_channel, d.qos_stream_id) == (CHANNEL, 1200)
        assert d.instance_id == "driver-01"
        assert d.aeron_dir == ""

    def test_has_the_recommended_ranges(self) -> None:
        d = default_config({}).driver
        assert d.stream_id_range == (IdRange(20000, 29999),)
        assert d.descriptor_stream_id_range == (IdRange(31000, 31999),)
        assert d.control_stream_id_range == (IdRange(32000, 32999),)

    def test_has_one_small_static_stream_and_allows_dynamic_ones(self) -> None:
        cfg = default_config({})
        assert dict(cfg.streams) == {"default": StreamSpec("default", 10000, "default")}
        assert dict(cfg.profiles) == {
            "default": Profile("default", 64, 256, (PoolSpec(1, 4096), PoolSpec(2, 65536)))
        }
        assert cfg.policies.allow_dynamic_streams is True
        assert cfg.policies.default_profile == "default"

    def test_shm_section(self) -> None:
        shm = default_config({}).shm
        assert shm.base_dir == Path("/dev/shm")
        assert shm.namespace == "default"
        assert shm.permissions_mode == 0o660
        assert shm.page_size_bytes == 4096
        assert shm.require_hugepages is False
        assert shm.allowed_base_dirs == (Path("/dev/shm").resolve(),)

    def test_policies_are_the_spec_defaults(self) -> None:
        p = default_config({}).policies
        assert p.announce_period_ms == 1000
        assert p.lease_keepalive_interval_ms == 1000
        assert p.lease_expiry_grace_intervals == 3
        assert p.node_id_reuse_cooldown_ms == 1000
        assert (p.prefault_shm, p.mlock_shm) == (True, False)
        assert (p.reuse_existing_shm, p.cleanup_shm_on_exit) == (False, False)
        assert (p.epoch_gc_enabled, p.epoch_gc_keep) == (True, 2)
        assert p.epoch_gc_min_age_ns == 3_000_000_000
        assert p.epoch_gc_on_startup is False
        assert p.shutdown_timeout_ms == 2000
        assert p.shutdown_token == ""

    def test_admin_is_enabled_in_the_computed_run_dir(self) -> None:
        admin = default_config({"XDG_RUNTIME_DIR": "/run/user/1000"}).admin
        user_dir = f"tensorpool-{effective_user_name()}"
        assert admin == AdminSection(
            enabled=True, run_dir=Path("/run/user/1000") / user_dir / "driver-01"
        )

    def test_load_config_without_a_path_is_the_built_in_configuration(self) -> None:
        env = {"DRIVER_CONTROL_STREAM_ID": "7"}
        assert load_config(None, env) == default_config(env)
        assert load_config(None, env).driver.control_stream_id == 7

    def test_is_frozen(self) -> None:
        cfg = default_config({})
        with pytest.raises(dataclasses.FrozenInstanceError):
            cfg.driver.control_stream_id = 5  # type: ignore[misc]
        with pytest.raises(TypeError):
            cfg.profiles["x"] = cfg.profiles["default"]  # type: ignore[index]

    def test_stream_by_id(self) -> None:
        cfg = default_config({})
        assert cfg.stream_by_id(10000) == StreamSpec("default", 10000, "default")
        assert cfg.stream_by_id(10001) is None


class TestSpecDefaultsOfAMinimalFile:
    """Every table is optional (A-16): missing keys take driver-behaviour.md §13 defaults."""

    def test_driver_defaults(self, load: Load) -> None:
        d = load(MINIMAL).driver
        assert (d.control_channel, d.control_stream_id) == (CHANNEL, 1000)
        # announce defaults to the control endpoint, qos to its own
        assert (d.announce_channel, d.announce_stream_id) == (CHANNEL, 1000)
        assert (d.qos_channel, d.qos_stream_id) == (CHANNEL, 1200)
        assert d.stream_id_range == d.descriptor_stream_id_range == d.control_stream_id_range == ()

    def test_announce_follows_a_configured_control_endpoint(self, load: Load) -> None:
        d = load(
            '[driver]\ncontrol_channel = "aeron:udp?endpoint=h:1"\ncontrol_stream_id = 5\n'
            + MINIMAL
        ).driver
        assert (d.announce_channel, d.announce_stream_id) == ("aeron:udp?endpoint=h:1", 5)
        assert d.qos_channel == CHANNEL

    def test_policies_defaults(self, load: Load) -> None:
        p = load(MINIMAL).policies
        assert p.allow_dynamic_streams is False
        assert p.default_profile == "p"
        assert p == dataclasses.replace(
            default_config({}).policies, allow_dynamic_streams=False, default_profile="p"
        )

    def test_profile_defaults(self, load: Load) -> None:
        assert load(MINIMAL).profiles["p"] == Profile("p", 1024, 256, (PoolSpec(1, 65536),))

    def test_shm_defaults(self, load: Load) -> None:
        assert load(MINIMAL).shm == default_config({}).shm

    def test_admin_defaults(self, load: Load) -> None:
        admin = load(MINIMAL, {"XDG_RUNTIME_DIR": "/run/user/42"}).admin
        assert admin == AdminSection(
            run_dir=default_run_dir("driver-01", {"XDG_RUNTIME_DIR": "/run/user/42"})
        )


class TestExampleFiles:
    def test_driver_toml_is_the_built_in_configuration(self) -> None:
        env = {"XDG_RUNTIME_DIR": "/run/user/1000"}
        assert load_config(EXAMPLES / "driver.toml", env) == default_config(env)

    def test_driver_toml_writes_out_every_key(self) -> None:
        text = (EXAMPLES / "driver.toml").read_text()
        names = [
            field.name
            for section in (DriverSection, ShmSection, Policies, AdminSection)
            for field in dataclasses.fields(section)
        ]
        assert len(names) == 11 + 6 + 16 + 6
        for name in names:
            assert f"\n{name} = " in text, name

    def test_c_compatible_toml_loads(self, caplog: pytest.LogCaptureFixture) -> None:
        cfg: DriverConfig = load_config(EXAMPLES / "c-compatible.toml", {})
        assert [s.stream_id for s in cfg.streams.values()] == [10000, 10001]
        assert cfg.profiles["camera"].payload_pools == (PoolSpec(1, 1 << 20), PoolSpec(2, 8 << 20))
        assert cfg.policies.allow_dynamic_streams is False
        assert cfg.driver.stream_id_range == (IdRange(20000, 29999),)
        assert caplog.records == []  # [supervisor] is ignored silently
