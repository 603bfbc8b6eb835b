"""Driver processes for end-to-end tests: real ``python launcher.py`` subprocesses.

Every process a test starts is killed by the fixture, even when the test fails, and every
directory it made (SHM base, admin run dir, Aeron dir) is removed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.log_follower import LogFollower

from .rawclient import RawClient

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

REPO = Path(__file__).resolve().parents[2]
CHANNEL = "aeron:ipc?term-length=1m"
CONTROL_STREAM = 1000
TOKEN = "s3cret"
KEEPALIVE_MS = 200

CONFIG_TEMPLATE = """\
[driver]
instance_id = "itest"
control_channel = "{channel}"
control_stream_id = {control}
announce_channel = "{channel}"
announce_stream_id = {announce}
qos_channel = "{channel}"
qos_stream_id = 1200
stream_id_range = "20000-20099"

[shm]
base_dir = "{base_dir}"
namespace = "itest"

[policies]
allow_dynamic_streams = true
default_profile = "small"
announce_period_ms = 200
lease_keepalive_interval_ms = {keepalive}
lease_expiry_grace_intervals = 3
shutdown_timeout_ms = 300
shutdown_token = "{token}"

[profiles.small]
header_nslots = 64
payload_pools = [ {{ pool_id = 1, stride_bytes = 1024 }}, {{ pool_id = 2, stride_bytes = 4096 }} ]

[streams.cam]
stream_id = 10000
profile = "small"

[admin]
enabled = true
run_dir = "{run_dir}"
"""


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIVER_", "TP_", "AERON_"))}
    env["PYTHONPATH"] = str(REPO)
    return env


def run_status(config: Path, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``python launcher.py status --json --config CONFIG``, as a user would run it."""
    return subprocess.run(
        [sys.executable, str(REPO / "launcher.py"), "status", "--json", "--config", str(config)],
        cwd=REPO,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def status_json(config: Path) -> dict[str, Any]:
    """The driver's status body, which must be there (exit 0, a JSON object)."""
    result = run_status(config)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert isinstance(body, dict)
    return body


@dataclass
class DriverProc:
    root: Path
    config_path: Path
    announce_stream: int
    proc: subprocess.Popen[str] | None = None
    lines: list[str] = field(default_factory=list)
    _log: LogFollower | None = None

    @property
    def aeron_dir(self) -> str:
        return str(self.root / "aeron")

    @property
    def base_dir(self) -> Path:
        return self.root / "shm"

    @property
    def ns_dir(self) -> Path:
        return next(self.base_dir.glob("tensorpool-*")) / "itest"

    def start(self, *extra: str, wait_ready: bool = True) -> DriverProc:
        self.lines.clear()
        self._log = LogFollower(self.lines)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "launcher.py"),
                "--config",
                str(self.config_path),
                "--aeron-dir",
                self.aeron_dir,
                *extra,
            ],
            cwd=REPO,
            env=child_env(),
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self._log.follow(self.proc.stderr)
        if wait_ready:
            self.wait_line(lambda line: "running:" in line)
        return self

    def wait_line(self, predicate: Callable[[str], bool], timeout: float = 30.0) -> str:
        assert self._log is not None
        return self._log.wait_line(
            predicate,
            timeout,
            exited=lambda: f"driver exited early ({self.proc and self.proc.poll()})",
        )

    def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout)
        assert self._log is not None
        self._log.drain(timeout)
        return code

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(30)

    def client(self) -> RawClient:
        return RawClient(self.aeron_dir, CHANNEL, CONTROL_STREAM, self.announce_stream)


def write_config(root: Path, *, announce_stream: int = CONTROL_STREAM) -> Path:
    path = root / "driver.toml"
    path.write_text(
        CONFIG_TEMPLATE.format(
            channel=CHANNEL,
            control=CONTROL_STREAM,
            announce=announce_stream,
            base_dir=root / "shm",
            run_dir=root / "run",
            keepalive=KEEPALIVE_MS,
            token=TOKEN,
        )
    )
    return path


class DriverFactory:
    """Makes (not starts) driver processes sharing one set of directories under ``root``.

    ``clients`` are the raw clients handed out by ``client_of``; the fixture closes them.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.made: list[DriverProc] = []
        self.clients: list[RawClient] = []

    def __call__(self, *, announce_stream: int = CONTROL_STREAM) -> DriverProc:
        config = write_config(self.root, announce_stream=announce_stream)
        drv = DriverProc(self.root, config, announce_stream)
        self.made.append(drv)
        return drv


@pytest.fixture
def driver_factory(tmp_path: Path) -> Iterator[DriverFactory]:
    """Make (not start) driver processes sharing one set of directories under tmp_path."""
    factory = DriverFactory(tmp_path)
    try:
        yield factory
    finally:
        for c in factory.clients:
            c.close()
        for drv in factory.made:
            if drv.proc is not None and drv.proc.poll() is None:
                drv.proc.send_signal(signal.SIGKILL)
            drv.kill()
        for sub in ("shm", "run", "aeron"):
            shutil.rmtree(tmp_path / sub, ignore_errors=True)


@pytest.fixture
def driver(driver_factory: DriverFactory) -> DriverProc:
    return driver_factory().start()


@pytest.fixture
def client_of(driver_factory: DriverFactory) -> Callable[[DriverProc], RawClient]:
    def make(drv: DriverProc) -> RawClient:
        c = drv.client()
        driver_factory.clients.append(c)
        return c

    return make
