"""Joining or embedding the Aeron media driver, and the one-driver-per-namespace lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pyaeron
import pytest

from actors.gateway.media_driver import (
    cnc_pid,
    driver_is_live,
    open_media_driver,
    resolve_aeron_dir,
)
from shm.instance_lock import InstanceLock, InstanceLockError

if TYPE_CHECKING:
    from collections.abc import Iterator

_DRIVER_PROCESS = (
    "import pyaeron, sys, time\n"
    "m = pyaeron.MediaDriver(dir=sys.argv[1], dir_delete_on_start=False)\n"
    "print('up', flush=True)\n"
    "sys.stdin.read()\n"
    "m.close()\n"
)


@pytest.fixture
def driver_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    aeron_dir = str(tmp_path / "aeron")
    proc = subprocess.Popen(
        [sys.executable, "-c", _DRIVER_PROCESS, aeron_dir],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "up"
        yield proc, aeron_dir
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_aeron_dir_precedence(tmp_path: Path) -> None:
    assert resolve_aeron_dir(str(tmp_path / "cli"), "/x/config") == str(tmp_path / "cli")
    assert resolve_aeron_dir(None, str(tmp_path / "cfg")) == str(tmp_path / "cfg")
    assert resolve_aeron_dir(None, "") == str(pyaeron.default_path())


def test_fresh_directory_gets_an_embedded_driver_removed_at_close(tmp_path: Path) -> None:
    aeron_dir = str(tmp_path / "aeron")
    handle = open_media_driver(aeron_dir)
    try:
        assert handle.embedded
        assert driver_is_live(aeron_dir)
        assert cnc_pid(aeron_dir) == os.getpid()
    finally:
        handle.close()
    assert not Path(aeron_dir).exists()


def test_live_driver_is_joined_and_left_running(
    driver_process: tuple[subprocess.Popen[str], str],
) -> None:
    proc, aeron_dir = driver_process
    handle = open_media_driver(aeron_dir)
    assert not handle.embedded
    assert cnc_pid(aeron_dir) == proc.pid
    handle.close()
    assert driver_is_live(aeron_dir)
    aeron = pyaeron.Aeron(dir=aeron_dir)  # still usable by clients
    aeron.close()


def test_stale_directory_of_a_killed_driver_is_replaced(
    driver_process: tuple[subprocess.Popen[str], str],
) -> None:
    proc, aeron_dir = driver_process
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert Path(aeron_dir, "cnc.dat").exists()
    assert not driver_is_live(aeron_dir)  # its heartbeat still looks fresh; its pid is gone
    handle = open_media_driver(aeron_dir)
    try:
        assert handle.embedded
        assert cnc_pid(aeron_dir) == os.getpid()
        aeron = pyaeron.Aeron(dir=aeron_dir)
        aeron.close()
    finally:
        handle.close()


def test_second_lock_on_a_namespace_names_the_holder(tmp_path: Path) -> None:
    ns = tmp_path / "tensorpool-u" / "default"
    with InstanceLock(ns) as first:
        assert first.path.read_text().strip() == str(os.getpid())
        with pytest.raises(InstanceLockError, match=f"pid {os.getpid()}"):
            InstanceLock(ns).acquire()
    assert not (ns / "driver.lock").exists()
    with InstanceLock(ns):  # free again
        pass


def test_lock_of_a_killed_holder_is_free(tmp_path: Path) -> None:
    ns = tmp_path / "ns"
    code = (
        "import sys; from pathlib import Path; from shm.instance_lock import InstanceLock\n"
        "InstanceLock(Path(sys.argv[1])).acquire(); print('locked', flush=True); sys.stdin.read()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(ns)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(InstanceLockError, match=f"pid {proc.pid}"):
            InstanceLock(ns).acquire()
        proc.kill()
        proc.wait(10)
        with InstanceLock(ns):
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
