"""A real driver process, a real Aeron client, and the admin CLI asking it what it holds."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from messages.control import Role
from tensorpool_client.admin_cli import status_main
from tensorpool_client.control import DriverClient
from tensorpool_config import DEFAULT_CONFIG_TOML
from tests.admin.helpers import json_int, json_object, json_objects, json_str

if TYPE_CHECKING:
    from collections.abc import Callable

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _write_config(base: Path) -> Path:
    text = DEFAULT_CONFIG_TOML
    text = text.replace('aeron_dir = ""', f'aeron_dir = "{base / "aeron"}"')
    text = text.replace('base_dir = "/dev/shm"', f'base_dir = "{base / "shm"}"')
    text = text.replace(
        "[admin]\nenabled = true", f'[admin]\nenabled = true\nrun_dir = "{base / "run"}"'
    )
    assert text.count(str(base)) == 3
    (base / "shm").mkdir()
    path = base / "driver.toml"
    path.write_text(text)
    return path


def _status_json(config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object] | None:
    out = io.StringIO()
    code = status_main(["--config", str(config), "--json", "--timeout", "0.5"], out=out)
    capsys.readouterr()
    return json_object(json.loads(out.getvalue())) if code == 0 else None


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _Lines(threading.Thread):
    """Collect a subprocess's stdout lines without ever blocking the test."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        super().__init__(daemon=True)
        self.proc = proc
        self.lines: list[str] = []
        self.cond = threading.Condition()

    def run(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()

    def wait_for(self, predicate: Callable[[list[str]], bool], timeout: float = 10.0) -> list[str]:
        with self.cond:
            assert self.cond.wait_for(lambda: predicate(self.lines), timeout), self.lines
            return list(self.lines)


def _kinds(lines: list[str]) -> list[tuple[str, dict[str, object]]]:
    events = [json_object(json.loads(line)) for line in lines if line.strip()]
    return [(json_str(e["kind"]), json_object(e["fields"])) for e in events]


def test_status_and_events_of_a_running_driver(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = run_dir.parent
    config = _write_config(base)
    env = {**os.environ, "AERON_CLIENT_LIVENESS_TIMEOUT": "2s"}
    log = base / "driver.log"
    with log.open("w") as log_file:  # a file, not a pipe: a full pipe would stall the driver
        driver = subprocess.Popen(
            [sys.executable, "launcher.py", "--config", str(config)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            text=True,
        )
    follower: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 20
        status = None
        while status is None and time.monotonic() < deadline and driver.poll() is None:
            status = _status_json(config, capsys)
        assert status is not None, log.read_text()
        assert json_str(json_object(status["driver"])["state"]).startswith("Driver.Running")
        assert json_object(status["driver"])["aeron_dir"] == str(base / "aeron")

        follower = subprocess.Popen(
            [sys.executable, "launcher.py", "events", "--config", str(config), "--json"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert follower.stderr is not None
        assert "following" in follower.stderr.readline()  # subscribed, and the driver answered
        lines = _Lines(follower)
        lines.start()
        with DriverClient(str(base / "aeron")) as client:
            lease = client.attach(10000, Role.PRODUCER)
            status = _status_json(config, capsys)
            assert status is not None
            [held] = [s for s in json_objects(status["leases"]) if s["lease_id"] == lease.lease_id]
            assert held["role"] == "PRODUCER"
            assert held["client_id"] == lease.client_id
            assert json_int(held["expires_in_ms"]) > 0
            [stream] = [s for s in json_objects(status["streams"]) if s["stream_id"] == 10000]
            assert stream["epoch"] == lease.epoch
            assert stream["producer_lease_id"] == lease.lease_id
            client.detach(lease)
        seen = lines.wait_for(lambda ls: any('"revoke"' in line for line in ls), timeout=10)
        kinds = _kinds(seen)
        attach = [f for k, f in kinds if k == "attach" and f.get("lease_id") == lease.lease_id]
        revoke = [f for k, f in kinds if k == "revoke" and f.get("lease_id") == lease.lease_id]
        assert attach
        assert revoke
    finally:
        if follower is not None:
            follower.kill()
            follower.communicate()
        _stop(driver)
    assert not (base / "run" / "admin.sock").exists()
