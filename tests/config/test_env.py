"""Environment overrides (driver-behaviour.md §13): names, aliases, precedence, parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tensorpool_config import (
    ConfigError,
    IdRange,
    default_config,
    effective_user_name,
    load_config,
)
from tests.config.helpers import MINIMAL, Load

FILE = (
    """
[driver]
control_channel = "aeron:ipc?term-length=4m"
control_stream_id = 1000
aeron_dir = "/from/file"
"""
    + MINIMAL
)


def test_every_table_key_is_overridable_by_its_upper_cased_dotted_name(load: Load) -> None:
    env = {
        "DRIVER_INSTANCE_ID": "env-driver",
        "DRIVER_CONTROL_STREAM_ID": "2000",
        "DRIVER_QOS_CHANNEL": "aeron:ipc",
        "SHM_NAMESPACE": "envns",
        "SHM_PERMISSIONS_MODE": "600",
        "SHM_REQUIRE_HUGEPAGES": "TRUE",
        "POLICIES_ALLOW_DYNAMIC_STREAMS": "True",
        "POLICIES_PREFAULT_SHM": "false",
        "POLICIES_ANNOUNCE_PERIOD_MS": "0",
        "POLICIES_EPOCH_GC_MIN_AGE_NS": "18446744073709551615",
        "POLICIES_SHUTDOWN_TOKEN": "tok",
        "ADMIN_ENABLED": "false",
        "ADMIN_RUN_DIR": "/run/tp-admin",
        "ADMIN_TCP_ENDPOINT": "tcp://*:7000",
    }
    cfg = load(FILE, env)
    assert cfg.driver.instance_id == "env-driver"
    assert cfg.driver.control_stream_id == 2000
    assert cfg.driver.qos_channel == "aeron:ipc"
    assert (cfg.shm.namespace, cfg.shm.permissions_mode) == ("envns", 0o600)
    assert cfg.shm.require_hugepages is True
    assert cfg.policies.allow_dynamic_streams is True
    assert cfg.policies.prefault_shm is False
    assert cfg.policies.announce_period_ms == 1000
    assert cfg.policies.epoch_gc_min_age_ns == 2**64 - 1
    assert cfg.policies.shutdown_token == "tok"
    assert cfg.admin.enabled is False
    assert cfg.admin.run_dir == Path("/run/tp-admin")
    assert cfg.admin.tcp_endpoint == "tcp://*:7000"


def test_announce_defaults_follow_an_overridden_control_endpoint(load: Load) -> None:
    d = load(MINIMAL, {"DRIVER_CONTROL_STREAM_ID": "77"}).driver
    assert (d.control_stream_id, d.announce_stream_id) == (77, 77)


def test_env_overrides_the_built_in_configuration() -> None:
    cfg = default_config(
        {
            "DRIVER_ANNOUNCE_STREAM_ID": "1500",
            "SHM_BASE_DIR": "/dev/shm/x",
            "SHM_ALLOWED_BASE_DIRS": "ignored: arrays are file-only",
        }
    )
    assert cfg.driver.announce_stream_id == 1500
    assert cfg.shm.base_dir == Path("/dev/shm/x")


@pytest.mark.parametrize(
    ("env", "field", "expected"),
    [
        ({"AERON_DIR": "/alias"}, "aeron_dir", "/alias"),
        ({"AERON_DIR": "/alias", "DRIVER_AERON_DIR": "/canonical"}, "aeron_dir", "/canonical"),
        ({"DRIVER_AERON_DIR": ""}, "aeron_dir", ""),
        ({}, "aeron_dir", "/from/file"),
        ({"TP_CONTROL_CHANNEL": "aeron:ipc?alias=1"}, "control_channel", "aeron:ipc?alias=1"),
        (
            {"TP_CONTROL_CHANNEL": "aeron:ipc?alias=1", "DRIVER_CONTROL_CHANNEL": "aeron:ipc?c=1"},
            "control_channel",
            "aeron:ipc?c=1",
        ),
        ({"TP_CONTROL_STREAM_ID": "3000"}, "control_stream_id", 3000),
        (
            {"TP_CONTROL_STREAM_ID": "3000", "DRIVER_CONTROL_STREAM_ID": "4000"},
            "control_stream_id",
            4000,
        ),
        (
            {"TP_CONTROL_STREAM_ID": "junk", "DRIVER_CONTROL_STREAM_ID": "4000"},
            "control_stream_id",
            4000,
        ),
    ],
)
def test_aliases_apply_only_when_the_driver_variable_is_unset(
    load: Load, env: dict[str, str], field: str, expected: object
) -> None:
    assert getattr(load(FILE, env).driver, field) == expected


def test_lower_case_or_foreign_variables_are_ignored(load: Load) -> None:
    cfg = load(FILE, {"driver_control_stream_id": "5", "CONTROL_STREAM_ID": "6"})
    assert cfg.driver.control_stream_id == 1000


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20000-20099", (IdRange(20000, 20099),)),
        ("20000", (IdRange(20000, 20000),)),
        ("20000,20001", (IdRange(20000, 20001),)),
        ("", ()),
    ],
)
def test_ranges_are_overridden_with_the_string_forms(
    load: Load, value: str, expected: tuple[IdRange, ...]
) -> None:
    text = '[driver]\nstream_id_range = "21000-21999"\n' + MINIMAL
    assert load(text, {"DRIVER_STREAM_ID_RANGE": value}).driver.stream_id_range == expected


@pytest.mark.parametrize(
    ("env", "key", "problem"),
    [
        (
            {"DRIVER_CONTROL_STREAM_ID": "abc"},
            "DRIVER_CONTROL_STREAM_ID (overrides driver.control_stream_id)",
            "must be a decimal integer, got 'abc'",
        ),
        ({"DRIVER_CONTROL_STREAM_ID": "1_000"}, "DRIVER_CONTROL_STREAM_ID", "decimal integer"),
        ({"DRIVER_CONTROL_STREAM_ID": " 1000"}, "DRIVER_CONTROL_STREAM_ID", "decimal integer"),
        ({"DRIVER_CONTROL_STREAM_ID": "0x10"}, "DRIVER_CONTROL_STREAM_ID", "decimal integer"),
        ({"DRIVER_CONTROL_STREAM_ID": ""}, "DRIVER_CONTROL_STREAM_ID", "decimal integer"),
        (
            {"TP_CONTROL_STREAM_ID": "1e3"},
            "TP_CONTROL_STREAM_ID (overrides driver.control_stream_id)",
            "decimal integer",
        ),
        (
            {"DRIVER_QOS_STREAM_ID": "99999999999"},
            "DRIVER_QOS_STREAM_ID",
            "must be between -2147483648 and 2147483647",
        ),
        ({"SHM_PERMISSIONS_MODE": "999"}, "SHM_PERMISSIONS_MODE", "octal"),
        (
            {"SHM_BASE_DIR": "relative"},
            "SHM_BASE_DIR (overrides shm.base_dir)",
            "must be an absolute path",
        ),
        ({"SHM_NAMESPACE": "a b"}, "SHM_NAMESPACE", "must match"),
        (
            {"DRIVER_STREAM_ID_RANGE": "0-5"},
            "DRIVER_STREAM_ID_RANGE (overrides driver.stream_id_range)",
            "1 <= first <= last",
        ),
        ({"DRIVER_STREAM_ID_RANGE": "x"}, "DRIVER_STREAM_ID_RANGE", "invalid range"),
        ({"ADMIN_RUN_DIR": "rel"}, "ADMIN_RUN_DIR", "must be an absolute path"),
    ],
)
def test_bad_values_name_the_variable(
    load: Load, env: dict[str, str], key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(FILE, env)
    assert info.value.key.startswith(key)
    assert problem in info.value.problem


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("TRUE", True), ("tRuE", True), (" true\n", True),
     ("false", False), ("FALSE", False), (" False ", False)],
)
def test_booleans_are_true_exactly_when_the_value_is_true_in_any_case(
    load: Load, caplog: pytest.LogCaptureFixture, value: str, *, expected: bool
) -> None:
    text = "[policies]\nallow_dynamic_streams = false\nmlock_shm = true\n" + MINIMAL
    env = {"POLICIES_ALLOW_DYNAMIC_STREAMS": value, "POLICIES_MLOCK_SHM": value}
    cfg = load(text, env)
    assert cfg.policies.allow_dynamic_streams is expected
    assert cfg.policies.mlock_shm is expected
    assert not [r for r in caplog.records if "neither true nor false" in r.getMessage()]


@pytest.mark.parametrize("value", ["yes", "1", "", "on", "truee", "t"])
def test_other_boolean_values_are_false_with_a_warning_naming_the_variable(
    load: Load, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    """Julia's rule (anything but ``true`` is false), but a typo must not pass unnoticed."""
    text = "[policies]\nmlock_shm = true\n" + MINIMAL
    cfg = load(text, {"POLICIES_MLOCK_SHM": value, "ADMIN_ENABLED": value})
    assert cfg.policies.mlock_shm is False
    assert cfg.admin.enabled is False
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    warnings = [w for w in warnings if "neither true nor false" in w]
    assert len(warnings) == 2
    assert "POLICIES_MLOCK_SHM (overrides policies.mlock_shm)" in warnings[0]
    assert "ADMIN_ENABLED (overrides admin.enabled)" in warnings[1]
    assert all(repr(value) in w and "taken as false" in w for w in warnings)


def test_a_cross_check_failure_caused_by_the_environment_still_fails(load: Load) -> None:
    text = '[driver]\nstream_id_range = "20000-29999"\n' + MINIMAL
    with pytest.raises(ConfigError, match=r"^driver.stream_id_range: .*control_stream_id 25000"):
        load(text, {"DRIVER_CONTROL_STREAM_ID": "25000"})


class TestAdminRunDir:
    def test_uses_xdg_runtime_dir_when_set(self, load: Load) -> None:
        cfg = load(MINIMAL, {"XDG_RUNTIME_DIR": "/run/user/7", "DRIVER_INSTANCE_ID": "d2"})
        assert cfg.admin.run_dir == Path(f"/run/user/7/tensorpool-{effective_user_name()}/d2")

    @pytest.mark.parametrize("xdg", [None, "", "relative/dir"])
    def test_falls_back_to_tmp(self, load: Load, xdg: str | None) -> None:
        env = {} if xdg is None else {"XDG_RUNTIME_DIR": xdg}
        cfg = load(MINIMAL, env)
        assert cfg.admin.run_dir == Path(f"/tmp/tensorpool-{effective_user_name()}/driver-01")

    def test_instance_id_becomes_one_safe_path_component(self, load: Load) -> None:
        cfg = load('[driver]\ninstance_id = "../a/b c"\n' + MINIMAL, {"XDG_RUNTIME_DIR": "/r"})
        assert cfg.admin.run_dir is not None
        assert cfg.admin.run_dir.parent == Path(f"/r/tensorpool-{effective_user_name()}")
        assert cfg.admin.run_dir.name == "___a_b_c"

    def test_explicit_run_dir_wins(self, load: Load) -> None:
        text = '[admin]\nrun_dir = "/srv/tp"\n' + MINIMAL
        assert load(text, {"XDG_RUNTIME_DIR": "/r"}).admin.run_dir == Path("/srv/tp")

    def test_user_name_is_sanitised(self) -> None:
        name = effective_user_name()
        assert name
        assert all(c.isascii() and (c.isalnum() or c in "_-") for c in name)

    def test_comes_from_the_env_mapping_not_the_process_environment(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("XDG_RUNTIME_DIR", "/process/env")
        path = tmp_path / "d.toml"
        path.write_text(MINIMAL)
        run_dir = load_config(path, {"XDG_RUNTIME_DIR": str(tmp_path)}).admin.run_dir
        assert run_dir == tmp_path / f"tensorpool-{effective_user_name()}" / "driver-01"
