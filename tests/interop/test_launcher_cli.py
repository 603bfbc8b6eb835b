"""The launcher as a command: help, bad configuration, one driver per namespace."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from messages import ResponseCode, Role
from shm.paths import user_dir_name

from .conftest import REPO, child_env, write_config

if TYPE_CHECKING:
    from collections.abc import Callable

    from .conftest import DriverFactory, DriverProc
    from .rawclient import RawClient

pytestmark = pytest.mark.slow


def run_launcher(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "launcher.py"), *args],
        cwd=REPO,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_help_explains_defaults_aeron_dir_environment_and_exit_codes() -> None:
    result = run_launcher("--help")
    assert result.returncode == 0
    text = result.stdout
    for needle in (
        "--config",
        "--aeron-dir",
        "--log-level",
        "status",
        "events",
        "DRIVER_CONTROL_STREAM_ID",
        "AERON_DIR",
        "TP_CONTROL_CHANNEL",
        "exit codes",
        "driver.lock",
        "stream 1000",
    ):
        assert needle in text, needle


def test_bad_config_names_the_key_exits_2_and_creates_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(
        config.read_text().replace("control_stream_id = 1000", 'control_stream_id = "abc"')
    )
    result = run_launcher("--config", str(config), "--aeron-dir", str(tmp_path / "aeron"))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "driver.control_stream_id" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["driver.toml"]


def test_config_nested_too_deeply_exits_2_with_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text() + "\n[hostile]\nx = " + "[" * 2000 + "]" * 2000 + "\n")
    result = run_launcher("--config", str(config), "--aeron-dir", str(tmp_path / "aeron"))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr[-2000:]
    assert str(config) in lines[0]
    assert "nested too deeply" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["driver.toml"]


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = run_launcher("--config", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert "nope.toml" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_second_driver_on_the_same_namespace_refuses_to_start(
    driver_factory: DriverFactory, client_of: Callable[[DriverProc], RawClient]
) -> None:
    first = driver_factory().start()
    assert first.proc is not None
    second = driver_factory().start(wait_ready=False)
    assert second.wait_exit() == 1
    assert any(f"pid {first.proc.pid}" in line for line in second.lines), second.lines
    assert first.proc.poll() is None
    client = client_of(first)  # the first one still answers
    _, resp = client.attach(client_id=41, role=Role.CONSUMER)
    assert resp.code == ResponseCode.OK


def test_a_planted_world_writable_user_dir_stops_the_start(
    driver_factory: DriverFactory,
) -> None:
    drv = driver_factory()
    user_dir = drv.base_dir / user_dir_name()
    user_dir.mkdir(parents=True)
    user_dir.chmod(0o777)  # another user could have made it so in a shared /dev/shm
    drv.start(wait_ready=False)
    assert drv.wait_exit() == 1
    assert any("world-writable" in line for line in drv.lines), drv.lines
    assert list(user_dir.iterdir()) == []


def test_a_base_dir_reached_through_a_symlink_works(
    driver_factory: DriverFactory, client_of: Callable[[DriverProc], RawClient]
) -> None:
    drv = driver_factory()
    real = drv.root / "real-shm"
    real.mkdir()
    drv.base_dir.symlink_to(real)  # like /dev/shm -> /run/shm on some hosts
    drv.start()
    client = client_of(drv)
    _, resp = client.attach(client_id=42, role=Role.CONSUMER)
    assert resp.code == ResponseCode.OK
    assert resp.header_region_uri.startswith(f"shm:file?path={real}/")


def test_keygen_prints_a_curve_key_pair() -> None:
    result = run_launcher("keygen")
    assert result.returncode == 0, result.stderr
    keys = dict(line.split(" = ") for line in result.stdout.splitlines())
    assert sorted(keys) == ["public_key", "secret_key"]
    assert all(len(value.strip('"')) == 40 for value in keys.values())


def run_installed(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The ``tensorpool-driver`` console script of this venv, as a user runs it: from another
    directory and without PYTHONPATH (which would hide a stale copy in site-packages)."""
    script = Path(sys.executable).parent / "tensorpool-driver"
    assert script.exists(), f"{script} missing: install the project (uv sync)"
    env = {k: v for k, v in child_env().items() if k != "PYTHONPATH"}
    return subprocess.run(
        [str(script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("args", [("--help",), ("keygen", "--help")])
def test_the_console_script_runs_the_current_launcher(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    installed = run_installed(*args, cwd=tmp_path)
    checkout = run_launcher(*args)
    assert installed.returncode == checkout.returncode == 0, installed.stderr
    assert installed.stdout == checkout.stdout
    assert installed.stderr == checkout.stderr == ""


def test_no_copy_of_the_launcher_in_site_packages() -> None:
    # An editable install that force-includes launcher.py leaves a copy that goes stale.
    assert not (Path(sysconfig.get_paths()["purelib"]) / "launcher.py").exists()
