"""Two "hosts" on one machine (bridge.md §13.1) and bridge processes between them.

Each host is a real ``python launcher.py`` driver with its own Aeron directory, SHM base
dir, namespace and run dir; each bridge is a real ``python launcher.py bridge`` process.
UDP goes to 127.0.0.1 only, on ports probed free for each test. Every process is killed and
every directory removed by the fixture, even when the test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.log_follower import LogFollower

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

REPO = Path(__file__).resolve().parents[2]
CHANNEL = "aeron:ipc?term-length=4m"

DRIVER_TOML = """\
[driver]
instance_id = "{name}"
aeron_dir = "{aeron_dir}"
control_channel = "{channel}"
control_stream_id = 1000
announce_channel = "{channel}"
announce_stream_id = 1001
qos_channel = "{channel}"
qos_stream_id = 1200

[shm]
base_dir = "{base_dir}"
namespace = "{name}"

[policies]
default_profile = "p"
announce_period_ms = 200
lease_keepalive_interval_ms = 1000
lease_expiry_grace_intervals = 3
shutdown_timeout_ms = 200

[profiles.p]
header_nslots = {nslots}
payload_pools = {pools}

[streams.s]
stream_id = {stream}
profile = "p"

[admin]
enabled = false
"""

BRIDGE_TOML = """\
[bridge]
instance_id = "{name}"
role = "{role}"
payload_channel = "{payload}"
payload_stream_id = 3000
control_channel = "{control}"
control_stream_id = 3001
{metadata}
mtu_bytes = 1408
chunk_bytes = 1024
max_chunk_bytes = 1024
max_payload_bytes = 16777216
integrity_crc32c = {integrity}
assembly_timeout_ms = 100
attach_backoff_ms = 200
run_dir = "{run_dir}"

[[mappings]]
source_stream_id = 10000
dest_stream_id = 20000
"""

POOLS_A = "[ { pool_id = 1, stride_bytes = 4096 }, { pool_id = 2, stride_bytes = 1048576 } ]"
POOLS_B = "[ { pool_id = 7, stride_bytes = 8192 }, { pool_id = 9, stride_bytes = 1048576 } ]"


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DRIVER_", "TP_", "AERON_", "BRIDGE_"))}
    env["PYTHONPATH"] = str(REPO)
    env["AERON_CLIENT_LIVENESS_TIMEOUT"] = "2s"
    return env


def free_udp_ports(count: int) -> list[int]:
    """Ports nobody holds on 127.0.0.1 right now (bound and released together)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class Proc:
    """A launcher subprocess whose stderr is collected line by line."""

    argv: list[str]
    lines: list[str] = field(default_factory=list)
    proc: subprocess.Popen[str] | None = None
    _log: LogFollower | None = None

    def start(self, ready: str | None = None, timeout: float = 30.0) -> Proc:
        self.lines.clear()
        self._log = LogFollower(self.lines)
        self.proc = subprocess.Popen(self.argv, cwd=REPO, env=child_env(),
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     text=True)
        self._log.follow(self.proc.stderr)
        if ready is not None:
            self.wait_line(lambda line: ready in line, timeout)
        return self

    def wait_line(self, predicate: Callable[[str], bool], timeout: float = 30.0) -> str:
        assert self._log is not None
        return self._log.wait_line(predicate, timeout, exited=lambda: "process exited early")

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@dataclass
class Host:
    name: str
    root: Path
    config: Path
    driver: Proc

    @property
    def aeron_dir(self) -> str:
        return str(self.root / "aeron")


@dataclass
class BridgeProc(Proc):
    config: Path = Path()
    driver_config: Path = Path()

    def status(self) -> dict[str, Any]:
        result = subprocess.run(
            [sys.executable, str(REPO / "launcher.py"), "bridge", "status", "--json",
             "--config", str(self.config), "--driver-config", str(self.driver_config)],
            cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=60, check=False,
        )
        assert result.returncode == 0, result.stderr
        body: dict[str, Any] = json.loads(result.stdout)
        return body

    def mapping(self, role: str) -> dict[str, Any]:
        return next(m for m in self.status()["mappings"] if m["role"] == role)

    def wait_state(self, role: str, *states: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            m = self.mapping(role)
            if m["state"] in states:
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"{role} stayed {m}; log: {self.lines[-30:]}")
            time.sleep(0.1)


class World:
    """Hosts and bridges of one test under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[Proc] = []
        self.dirs: list[Path] = []
        # Unix socket paths are limited to 107 bytes: the run dirs live in a short temp dir.
        self.run_root = Path(tempfile.mkdtemp(prefix="tpb-"))
        self.dirs.append(self.run_root)
        payload, control, metadata = free_udp_ports(3)
        self.metadata = f"aeron:udp?endpoint=127.0.0.1:{metadata}"
        self.payload = f"aeron:udp?endpoint=127.0.0.1:{payload}"
        self.control = f"aeron:udp?endpoint=127.0.0.1:{control}"

    def host(self, name: str, *, stream: int, pools: str, nslots: int) -> Host:
        root = self.root / name
        root.mkdir()
        self.dirs.append(root)
        config = root / "driver.toml"
        config.write_text(DRIVER_TOML.format(
            name=name, aeron_dir=root / "aeron", channel=CHANNEL, base_dir=root / "shm",
            nslots=nslots, pools=pools, stream=stream))
        driver = Proc([sys.executable, str(REPO / "launcher.py"), "--config", str(config)])
        self.procs.append(driver)
        host = Host(name, root, config, driver)
        driver.start(ready="running:")
        return host

    def bridge(self, host: Host, role: str, *, integrity: bool = False, name: str = "",
               payload: str | None = None, control: str | None = None,
               metadata: bool = False, start: bool = True) -> BridgeProc:
        name = name or f"bridge-{role}-{host.name}"
        config = host.root / f"{name}.toml"
        config.write_text(BRIDGE_TOML.format(
            name=name, role=role, payload=payload or self.payload, control=control or self.control,
            integrity="true" if integrity else "false", run_dir=self.run_root / name,
            metadata=(f'metadata_channel = "{self.metadata}"\nmetadata_stream_id = 3002\n'
                      "source_metadata_stream_id = 1300\nforward_metadata = true")
            if metadata else "forward_metadata = false"))
        proc = BridgeProc([sys.executable, str(REPO / "launcher.py"), "bridge", "--config",
                           str(config), "--driver-config", str(host.config)],
                          config=config, driver_config=host.config)
        self.procs.append(proc)
        if start:
            proc.start()
        return proc

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop(10)
            proc.kill()
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    try:
        yield w
    finally:
        w.close()
