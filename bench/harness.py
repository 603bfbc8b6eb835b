"""What the driver benches share: a real driver subprocess beside its own media driver process,
measured from outside, and the numbers they print.

The media driver runs in a process of its own, so the driver process's CPU is the driver's
alone (the issue's "embedded media driver aside"). Everything made (SHM base, run dir,
Aeron dir) is removed and every process stopped on the way out, even on failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

REPO = Path(__file__).resolve().parents[1]
CHANNEL = "aeron:ipc?term-length=16m"
CONTROL_STREAM = 1000
ANNOUNCE_STREAM = 1001
CONFIG = """\
[driver]
instance_id = "bench"
control_channel = "{ch}"
control_stream_id = {control}
announce_channel = "{ch}"
announce_stream_id = {announce}
qos_channel = "{ch}"
qos_stream_id = 1200

[shm]
base_dir = "{base}"
namespace = "bench"

[policies]
announce_period_ms = 1000
lease_keepalive_interval_ms = {keepalive_ms}
lease_expiry_grace_intervals = {grace}
node_id_reuse_cooldown_ms = 0
epoch_gc_keep = 2
epoch_gc_min_age_ns = 1

[profiles.small]
header_nslots = 1024
payload_pools = [ {{ pool_id = 1, stride_bytes = 4096 }} ]

[streams.cam]
stream_id = 10000
profile = "small"

[admin]
run_dir = "{run}"
"""

MEDIA_DRIVER = """\
import signal, sys, pyaeron
driver = pyaeron.MediaDriver(dir=sys.argv[1], dir_delete_on_start=True, dir_delete_on_shutdown=True)
print("up", flush=True)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
driver.close()
"""


def status_counters(config: Path) -> dict[str, int]:
    """The counters of the driver serving ``config`` (``launcher.py status --json``)."""
    out = subprocess.run(
        [sys.executable, str(REPO / "launcher.py"), "status", "--config", str(config), "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    counters: dict[str, int] = json.loads(out.stdout)["counters"]
    return counters


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def stop(proc: subprocess.Popen[bytes] | subprocess.Popen[str], timeout: float = 30) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class RunningDriver:
    """A driver subprocess and its media driver, with the paths a client needs."""

    proc: subprocess.Popen[bytes]
    media: subprocess.Popen[str]
    aeron_dir: str
    config: Path
    ttl_ns: int

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)


@contextlib.contextmanager
def running_driver(*, keepalive_ms: int = 1000, grace: int = 3) -> Iterator[RunningDriver]:
    """Start a media driver process and a driver on it; stop both and remove their files."""
    shm_root = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    base = Path(tempfile.mkdtemp(prefix="tp-bench-", dir=shm_root))
    tmp = Path(tempfile.mkdtemp(prefix="tp-bench-"))
    aeron_dir = str(tmp / "aeron")
    config = tmp / "driver.toml"
    config.write_text(
        CONFIG.format(
            ch=CHANNEL,
            control=CONTROL_STREAM,
            announce=ANNOUNCE_STREAM,
            base=base,
            run=tmp / "run",
            keepalive_ms=keepalive_ms,
            grace=grace,
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIVER_", "AERON_"))}
    media = subprocess.Popen(
        [sys.executable, "-c", MEDIA_DRIVER, aeron_dir], stdout=subprocess.PIPE, text=True
    )
    proc: subprocess.Popen[bytes] | None = None
    try:
        assert media.stdout is not None
        if media.stdout.readline().strip() != "up":
            raise SystemExit("the media driver did not start")
        command = [sys.executable, str(REPO / "launcher.py"), "--config", str(config)]
        command += ["--aeron-dir", aeron_dir, "--log-level", "WARNING"]
        proc = subprocess.Popen(command, cwd=REPO, env=env)
        yield RunningDriver(proc, media, aeron_dir, config, keepalive_ms * grace * 1_000_000)
    finally:
        if proc is not None:
            stop(proc)
        stop(media)
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


