"""Two processes on one ring: a writer as fast as it can, a reader that must never accept a torn
frame. Bounded to a few seconds; both processes are always stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from shm import ProvisionRequest, provision_epoch

WORKER = Path(__file__).with_name("torture_worker.py")
REPO = Path(__file__).resolve().parents[2]

RequestFor = Callable[..., ProvisionRequest]


def _spawn(role: str, *args: str, broken: bool = False) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "TORTURE_SKIP_RELOAD_CHECK": "1" if broken else "0",
    }
    return subprocess.Popen(
        [sys.executable, str(WORKER), role, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _torture(request_for: RequestFor, base: Path, *, broken: bool) -> dict[str, int]:
    epoch = provision_epoch(request_for(stream_id=1, header_nslots=2, pools=((1, 65536),)))
    args = [epoch.header_uri, epoch.pools[0].uri, str(epoch.epoch), str(base)]
    writer = _spawn("writer", *args, "20")
    reader = None
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready", writer.stderr
        reader = _spawn("reader", *args, "2", broken=broken)
        out, err = reader.communicate(timeout=30)
        assert reader.returncode == 0, err
        assert writer.poll() is None, "writer stopped before the reader finished"
        counts: dict[str, int] = json.loads(out)
    finally:
        _stop(writer)
        if reader is not None:
            _stop(reader)
    return counts


@pytest.mark.slow
def test_reader_never_accepts_a_torn_frame(request_for: RequestFor, base: Path) -> None:
    counts = _torture(request_for, base, broken=False)
    assert counts["bad"] == 0, counts
    assert counts["invalid"] == 0, counts
    assert counts["accepted"] > 100, counts
    assert counts["torn"] + counts["not_committed"] + counts["other_seq"] > 0, counts


@pytest.mark.slow
def test_the_frame_check_catches_tearing_when_the_reload_check_is_skipped(
    request_for: RequestFor, base: Path
) -> None:
    """Negative control: proves the torture setup really produces and detects torn frames."""
    counts = _torture(request_for, base, broken=True)
    assert counts["bad"] > 0, counts
