"""Files that cannot be used, TOML syntax errors, and warnings for keys we do not know."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tensorpool_config import ConfigError, load_config
from tests.config.helpers import MINIMAL, Load


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.key == str(path)
    assert "cannot read the file" in info.value.problem
    assert "No such file" in info.value.problem


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, {})  # a directory: readable by anyone, even root, but not a file
    assert info.value.key == str(tmp_path)
    assert "cannot read the file" in info.value.problem


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[driver]\ninstance_id = "caf\xe9"\n')
    with pytest.raises(ConfigError, match=r"latin1\.toml: not UTF-8 text"):
        load_config(path, {})


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("[driver]\ncontrol_stream_id = \n", "line 2"),
        ("[driver\n", "line 1"),
        ("[driver]\na = 1\na = 2\n", "line 3"),
        ('[shm]\nbase_dir = "/dev/shm\n', "line 2"),
    ],
)
def test_toml_syntax_error_names_the_file_and_line(tmp_path: Path, text: str, line: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.key == str(path)
    assert info.value.problem.startswith("invalid TOML: ")
    assert line in info.value.problem
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "value",
    [
        "[" * 2000 + "]" * 2000,
        "{ b = " * 2000 + "1" + " }" * 2000,
        "[{ b = " * 1000 + "1" + " }]" * 1000,
    ],
    ids=["arrays", "inline-tables", "mixed"],
)
def test_toml_nested_too_deeply_is_a_one_line_error_naming_the_file(
    tmp_path: Path, value: str
) -> None:
    path = tmp_path / "deep.toml"
    path.write_text(MINIMAL + f"\n[driver]\nhostile = {value}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.key == str(path)
    assert info.value.problem == "invalid TOML: arrays or inline tables nested too deeply to parse"
    assert info.value.__cause__ is None  # no thousand-frame traceback carried along


def test_toml_integer_past_the_digit_limit_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "long.toml"
    path.write_text(MINIMAL + "\n[driver]\ncontrol_stream_id = " + "9" * 5000 + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.key == str(path)
    assert info.value.problem.startswith("invalid TOML: unreadable value: ")
    assert "digits" in info.value.problem
    assert "set_int_max_str_digits" not in info.value.problem
    assert "\n" not in str(info.value)


def test_loads_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text(MINIMAL)
    assert load_config(path, {}).streams["s"].stream_id == 10000
    assert load_config(str(path), {}) == load_config(path, {})


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[driver]\nfuture_key = 1\n", "driver.future_key"),
        ("[shm]\nfuture_key = 1\n", "shm.future_key"),
        ("[policies]\nfuture_key = 1\n", "policies.future_key"),
        ("[admin]\nfuture_key = 1\n", "admin.future_key"),
        ("[streams.t]\nstream_id = 5\nfuture_key = 1\n", "streams.t.future_key"),
        (
            "[profiles.q]\nfuture_key = 1\npayload_pools = [{pool_id=1, stride_bytes=65536}]\n",
            "profiles.q.future_key",
        ),
        (
            "[profiles.q]\npayload_pools = [{pool_id=1, stride_bytes=65536, hugepages=true}]\n",
            "profiles.q.payload_pools[0].hugepages",
        ),
        ("[telemetry]\nport = 1\n", "[telemetry]"),
        ("top_level_scalar = 1\n", "[top_level_scalar]"),
    ],
)
def test_unknown_keys_are_warned_about_and_ignored(
    load: Load, caplog: pytest.LogCaptureFixture, text: str, named: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="config"):
        cfg = load(text + MINIMAL)
    assert cfg.streams["s"].stream_id == 10000
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert named in warnings[0]
    assert "ignored" in warnings[0]


def test_supervisor_table_is_accepted_silently(
    load: Load, caplog: pytest.LogCaptureFixture
) -> None:
    text = "[supervisor]\nconsumer_capacity = 64\nforce_no_shm = false\n" + MINIMAL
    with caplog.at_level(logging.DEBUG, logger="config"):
        load(text)
    assert caplog.records == []


def test_known_keys_do_not_warn(load: Load, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="config"):
        load_config(Path(__file__).resolve().parents[2] / "examples" / "driver.toml", {})
        load(MINIMAL)
    assert caplog.records == []
