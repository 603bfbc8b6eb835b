"""Fixtures for the admin plane: short run dirs, a fake DriverActor, a running plane."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from actors.admin import AdminPlane, start_admin
from tensorpool_config import DEFAULT_CONFIG_TOML
from tests.admin.helpers import FakeDriver, make_config, sample_status

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pykka

    from tensorpool_config import DriverConfig


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """A run dir short enough for a unix socket path (tmp_path can exceed 107 bytes)."""
    base = Path(tempfile.mkdtemp(prefix="tpa-", dir="/tmp"))
    try:
        yield base / "run"
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def config(run_dir: Path) -> DriverConfig:
    return make_config(run_dir)


@pytest.fixture
def config_file(run_dir: Path, tmp_path: Path) -> Path:
    """The built-in configuration with the admin run dir moved into the test's directory."""
    text = DEFAULT_CONFIG_TOML.replace(
        "[admin]\nenabled = true", f'[admin]\nenabled = true\nrun_dir = "{run_dir}"'
    )
    assert str(run_dir) in text
    path = tmp_path / "driver.toml"
    path.write_text(text)
    return path


@pytest.fixture
def fake_driver() -> Iterator[pykka.ActorRef[FakeDriver]]:
    ref = FakeDriver.start(sample_status())
    try:
        yield ref
    finally:
        ref.stop()


@pytest.fixture
def plane(config: DriverConfig, fake_driver: pykka.ActorRef[FakeDriver]) -> Iterator[AdminPlane]:
    info = {"aeron_dir": "/dev/shm/aeron-test", "counters": {"gateway.decode_errors": 3}}
    admin = start_admin(config, lambda: info, status_timeout_s=1.0)
    admin.bind_driver(fake_driver)
    try:
        yield admin
    finally:
        admin.stop()
