"""The README's examples work: a consumer and a producer process against a real driver.

The driver runs the BUILT-IN channels and streams (control 1000, announce 1001, descriptors
1100 on ``aeron:ipc?term-length=4m``), which is what the examples assume; only the SHM base,
the admin run dir and the Aeron dir are moved into the test's temporary directory.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from .conftest import REPO, DriverProc, child_env

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow

FRAMES = 5


@pytest.fixture
def default_driver(tmp_path: Path) -> Iterator[DriverProc]:
    """A driver with the built-in configuration except where its files go."""
    config = tmp_path / "driver.toml"
    config.write_text(
        f'[shm]\nbase_dir = "{tmp_path / "shm"}"\n'
        f'[admin]\nrun_dir = "{tmp_path / "run"}"\n'
        '[streams.default]\nstream_id = 10000\nprofile = "default"\n'
        "[profiles.default]\nheader_nslots = 64\n"
        "payload_pools = [{ pool_id = 1, stride_bytes = 4096 }]\n"
    )
    drv = DriverProc(tmp_path, config, announce_stream=1001)
    try:
        yield drv.start()
    finally:
        drv.kill()


def example(name: str, drv: DriverProc, *args: str) -> list[str]:
    return [
        sys.executable,
        str(REPO / "examples" / name),
        "--aeron-dir",
        drv.aeron_dir,
        "--shm-base-dir",
        str(drv.base_dir),
        *args,
    ]


def start_consumer(drv: DriverProc, *args: str) -> subprocess.Popen[str]:
    """The consumer example, once it has attached and mapped (its first line)."""
    consumer = subprocess.Popen(
        example("consumer.py", drv, *args),
        cwd=REPO,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert consumer.stdout is not None
    first = consumer.stdout.readline()  # attached and mapped: a producer may start
    if not first.startswith("lease "):
        consumer.kill()
        consumer.wait(30)
        raise AssertionError(first + consumer.stdout.read())
    return consumer


def test_consumer_example_prints_every_frame_of_the_producer_example(
    default_driver: DriverProc,
) -> None:
    consumer = start_consumer(default_driver, "--frames", str(FRAMES), "--seconds", "60")
    try:
        producer = subprocess.run(
            example("producer.py", default_driver, "--count", str(FRAMES)),
            cwd=REPO,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert producer.returncode == 0, producer.stdout + producer.stderr
        out, _ = consumer.communicate(timeout=60)
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait(30)
    assert consumer.returncode == 0, out
    frames = [line for line in out.splitlines() if line.startswith("seq ")]
    # Frame i is a 4x4 float32 array filled with i, so its sum is 16 * i.
    assert [line.split("sum=")[1] for line in frames] == [f"{16.0 * i}" for i in range(FRAMES)], out
    assert all("float32[4, 4]" in line for line in frames), out


def test_consumer_example_says_why_it_stops_when_the_driver_shuts_down(
    default_driver: DriverProc,
) -> None:
    consumer = start_consumer(default_driver, "--seconds", "60")
    try:
        default_driver.signal(signal.SIGINT)  # drain, ShmDriverShutdown, exit
        assert default_driver.wait_exit() == 0
        out, _ = consumer.communicate(timeout=60)
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait(30)
    assert consumer.returncode == 1, out
    assert out.splitlines()[-1].startswith("stopped: "), out
    assert "Traceback" not in out, out
