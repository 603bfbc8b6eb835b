"""Ending and restarting a driver process: shutdown request, SIGTERM, restart, stale dirs."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from messages import (
    ResponseCode,
    Role,
    ShmDriverShutdown,
    ShmDriverShutdownRequest,
    ShutdownReason,
)

from .conftest import CHANNEL, CONTROL_STREAM, REPO, TOKEN, child_env

if TYPE_CHECKING:
    from collections.abc import Callable

    from .conftest import DriverFactory, DriverProc
    from .rawclient import RawClient

pytestmark = pytest.mark.slow


def shutdown_request(token: str, cid: int = 77) -> ShmDriverShutdownRequest:
    return ShmDriverShutdownRequest(
        correlation_id=cid, reason=ShutdownReason.ADMIN, token=token, error_message="maintenance"
    )


def test_shutdown_request_with_wrong_token_is_ignored_and_right_token_stops(
    driver: DriverProc, client_of: Callable[[DriverProc], RawClient]
) -> None:
    client = client_of(driver)
    client.send(shutdown_request("wrong"))
    client.send(shutdown_request(""))
    _, resp = client.attach(client_id=501, role=Role.CONSUMER)  # still running, still serving
    assert resp.code == ResponseCode.OK
    assert not [m for m in client.seen if isinstance(m, ShmDriverShutdown)]

    client.send(shutdown_request(TOKEN))
    _, rejected = client.attach(client_id=502, role=Role.CONSUMER)  # draining now
    assert rejected.code == ResponseCode.REJECTED
    assert rejected.error_message == "driver draining"
    _, final = client.wait_for(lambda m: isinstance(m, ShmDriverShutdown))
    assert final.reason == ShutdownReason.ADMIN
    assert final.error_message == "maintenance"
    assert driver.wait_exit() == 0


def test_sigterm_publishes_shutdown_exits_0_and_leaves_nothing(
    driver: DriverProc, client_of: Callable[[DriverProc], RawClient]
) -> None:
    client = client_of(driver)
    _, resp = client.attach(client_id=601, role=Role.PRODUCER)
    assert resp.code == ResponseCode.OK
    lock = driver.ns_dir / "driver.lock"
    assert lock.exists()
    driver.signal(signal.SIGTERM)
    _, final = client.wait_for(lambda m: isinstance(m, ShmDriverShutdown))
    assert final.reason == ShutdownReason.NORMAL
    assert driver.wait_exit() == 0
    assert not lock.exists()
    assert not Path(driver.aeron_dir).exists()  # the embedded media driver removed its dir
    assert any("stopped" in line for line in driver.lines)


def test_second_signal_skips_the_drain(
    driver: DriverProc, client_of: Callable[[DriverProc], RawClient]
) -> None:
    client = client_of(driver)
    driver.signal(signal.SIGINT)
    driver.wait_line(lambda line: "shutdown requested" in line)
    driver.signal(signal.SIGINT)
    _, final = client.wait_for(lambda m: isinstance(m, ShmDriverShutdown))
    assert final.reason == ShutdownReason.NORMAL
    assert driver.wait_exit() == 0
    assert any("skipping the drain" in line for line in driver.lines)


def test_restart_gives_strictly_larger_epochs(
    driver_factory: DriverFactory, client_of: Callable[[DriverProc], RawClient]
) -> None:
    first = driver_factory().start()
    client = client_of(first)
    _, p1 = client.attach(client_id=701, role=Role.PRODUCER)
    assert p1.code == ResponseCode.OK
    assert p1.epoch is not None
    first.signal(signal.SIGTERM)
    assert first.wait_exit() == 0
    client.close()
    driver_factory.clients.remove(client)

    second = driver_factory().start()
    client = client_of(second)
    _, p2 = client.attach(client_id=701, role=Role.PRODUCER)
    assert p2.code == ResponseCode.OK
    assert p2.epoch is not None
    assert p2.epoch > p1.epoch
    assert p2.lease_id != p1.lease_id


def test_restart_after_kill_9_replaces_the_stale_aeron_dir(
    driver_factory: DriverFactory, client_of: Callable[[DriverProc], RawClient]
) -> None:
    first = driver_factory().start()
    first.kill()  # SIGKILL: cnc.dat, the lock file and the SHM files stay behind
    assert Path(first.aeron_dir, "cnc.dat").exists()
    second = driver_factory().start()
    assert any("embedded" in line for line in second.lines)
    client = client_of(second)
    _, resp = client.attach(client_id=801, role=Role.PRODUCER)
    assert resp.code == ResponseCode.OK
    second.signal(signal.SIGTERM)
    assert second.wait_exit() == 0


def test_loss_of_an_external_media_driver_exits_1(
    driver_factory: DriverFactory, client_of: Callable[[DriverProc], RawClient]
) -> None:
    drv = driver_factory()
    media = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import pyaeron, sys\n"
                "m = pyaeron.MediaDriver(dir=sys.argv[1], dir_delete_on_start=False)\n"
                "print('up', flush=True)\nsys.stdin.read()\n"
            ),
            drv.aeron_dir,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert media.stdout is not None
        assert media.stdout.readline().strip() == "up"
        drv.start()
        assert any("(external)" in line for line in drv.lines)
        media.kill()
        media.wait(10)
        assert drv.wait_exit(timeout=60) == 1
        assert any("lost the Aeron media driver" in line for line in drv.lines)
        assert not (drv.ns_dir / "driver.lock").exists()
    finally:
        if media.poll() is None:
            media.kill()
        media.wait(10)


# A client process attached to the driver: it prints "up" once it holds a lease, then, after
# the test closes its stdin (the driver is gone by then), what its client saw, and exits 0.
_CLIENT = """\
import sys, time
from tensorpool_client import DriverClient
from messages import Role
aeron_dir, channel, stream = sys.argv[1], sys.argv[2], int(sys.argv[3])
client = DriverClient(aeron_dir, control_channel=channel, control_stream_id=stream,
                      announce_channel=channel, announce_stream_id=stream)
client.start()
client.attach(10000, Role.CONSUMER)
print("up", flush=True)
sys.stdin.read()
deadline = time.monotonic() + 20
while client.aeron.running and time.monotonic() < deadline:
    time.sleep(0.05)
print("running" if client.aeron.running else "stopped", flush=True)
client.close()
"""


def test_a_client_process_outlives_the_driver_it_was_attached_to(driver: DriverProc) -> None:
    """The Aeron C client's default error handler calls exit(1) on "MediaDriver has been
    shutdown", which a driver with an embedded media driver causes when it stops: the
    client library must handle that error so the user's process lives on."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _CLIENT, driver.aeron_dir, CHANNEL, str(CONTROL_STREAM)],
        cwd=REPO,
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "up"
        driver.signal(signal.SIGTERM)
        assert driver.wait_exit() == 0
        out, err = proc.communicate("", timeout=60)
        assert proc.returncode == 0, err
        assert out.strip() == "stopped", err
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
