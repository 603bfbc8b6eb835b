"""When the admin plane cannot start: a warning for defaults and shared run dirs, else exit 1.

Configurations written for the C and Julia drivers have no ``[admin]`` table and usually
keep the default ``driver.instance_id``, which also names the default admin run dir; two
such drivers on different namespaces must both run.
"""

from __future__ import annotations

import json
import shutil
import signal
from typing import TYPE_CHECKING

import pytest

from messages import ResponseCode, Role

from .conftest import CHANNEL, CONTROL_STREAM, DriverProc, run_status

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from .rawclient import RawClient

pytestmark = pytest.mark.slow

# No [admin] table and no driver.instance_id: what a C/Julia user's file looks like.
REFERENCE_STYLE_CONFIG = """\
[driver]
control_channel = "{channel}"
control_stream_id = {control}
announce_channel = "{channel}"
announce_stream_id = {control}
qos_channel = "{channel}"
stream_id_range = "20000-20099"

[shm]
base_dir = "{base_dir}"
namespace = "{namespace}"

[policies]
shutdown_timeout_ms = 300

[profiles.small]
header_nslots = 64
payload_pools = [ {{ pool_id = 1, stride_bytes = 1024 }} ]

[streams.cam]
stream_id = 10000
profile = "small"
"""

WARNING_NEEDLE = "admin plane not started"


class Drivers:
    """Driver processes, each under its own root (SHM base, Aeron dir, config)."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.made: list[DriverProc] = []
        self.clients: list[RawClient] = []

    def __call__(self, name: str, admin: str = "") -> DriverProc:
        root = self.tmp_path / name
        root.mkdir()
        config = root / "driver.toml"
        text = REFERENCE_STYLE_CONFIG.format(
            channel=CHANNEL, control=CONTROL_STREAM, base_dir=root / "shm", namespace=f"ns-{name}"
        )
        config.write_text(text + admin)
        drv = DriverProc(root, config, CONTROL_STREAM)
        self.made.append(drv)
        return drv

    def client(self, drv: DriverProc) -> RawClient:
        c = drv.client()
        self.clients.append(c)
        return c

    def close_clients(self) -> None:
        """Before any driver stops: a client's media driver going away ends its process."""
        while self.clients:
            self.clients.pop().close()


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private XDG_RUNTIME_DIR for the drivers (child_env copies os.environ)."""
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    return runtime


@pytest.fixture
def drivers(tmp_path: Path, xdg: Path) -> Iterator[Drivers]:
    made = Drivers(tmp_path)
    try:
        yield made
    finally:
        made.close_clients()
        for drv in made.made:
            drv.kill()
            shutil.rmtree(drv.root, ignore_errors=True)
        shutil.rmtree(xdg, ignore_errors=True)


def attach_ok(client: RawClient, client_id: int) -> None:
    _, resp = client.attach(client_id=client_id, role=Role.CONSUMER)
    assert resp.code == ResponseCode.OK


def stop(drv: DriverProc) -> None:
    drv.signal(signal.SIGTERM)
    assert drv.wait_exit() == 0, drv.lines


def status_json(config: Path, stderr: list[str] | None = None) -> dict[str, object]:
    """The ``status --json`` body reached through ``config``; its stderr into ``stderr``."""
    result = run_status(config)
    assert result.returncode == 0, result.stderr
    if stderr is not None:
        stderr.append(result.stderr)
    body = json.loads(result.stdout)
    assert isinstance(body, dict)
    return body


def admin_warnings(drv: DriverProc) -> list[str]:
    return [line for line in drv.lines if WARNING_NEEDLE in line]


def test_two_drivers_with_the_default_instance_id_both_run(drivers: Drivers, xdg: Path) -> None:
    first = drivers("a").start()
    second = drivers("b").start()
    for drv, client_id in ((first, 51), (second, 52)):
        attach_ok(drivers.client(drv), client_id)
    assert admin_warnings(first) == []
    [warning] = admin_warnings(second)
    assert " WARNING " in warning
    run_dir = next(xdg.glob("tensorpool-*")) / "driver-01"
    assert f"another driver already serves {run_dir}" in warning
    for fix in ("driver.instance_id", "admin.run_dir", "admin.enabled = false"):
        assert fix in warning, fix
    running = second.wait_line(lambda line: "running:" in line)
    assert running.endswith("admin not started (see the warning above)")
    # The run dir still belongs to the first driver, and its status plane answers.
    own: list[str] = []
    body = status_json(first.config_path, own)
    assert str(first.root / "shm") in json.dumps(body)
    assert "note:" not in own[0]
    # Asked through the second's configuration, status says the answer is the first's.
    other: list[str] = []
    answered = status_json(second.config_path, other)["driver"]
    assert isinstance(answered, dict)
    assert str(first.root / "shm") in answered["shm_namespace_dir"]
    assert "note: the driver answering at" in other[0]
    assert str(second.root / "shm") in other[0]
    drivers.close_clients()
    stop(second)
    stop(first)


def test_default_admin_that_cannot_start_is_a_warning(drivers: Drivers, xdg: Path) -> None:
    xdg.chmod(0o770)  # group-writable, not sticky: the run dir's ancestor check refuses it
    drv = drivers("a").start()
    attach_ok(drivers.client(drv), 53)
    [warning] = admin_warnings(drv)
    assert "group/world-writable" in warning
    assert "admin.run_dir" in warning
    drivers.close_clients()
    stop(drv)


def test_the_examples_admin_table_counts_as_defaults(drivers: Drivers, xdg: Path) -> None:
    xdg.chmod(0o770)
    drv = drivers("a", admin='\n[admin]\nenabled = true\nrun_dir = ""\n').start()
    assert len(admin_warnings(drv)) == 1
    stop(drv)


def test_configured_admin_that_cannot_start_exits_1(drivers: Drivers, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # world-writable without the sticky bit
    drv = drivers("a", admin=f'\n[admin]\nrun_dir = "{shared / "run"}"\n')
    drv.start(wait_ready=False)
    assert drv.wait_exit() == 1
    assert any("cannot start the admin plane" in line for line in drv.lines), drv.lines
    assert admin_warnings(drv) == []


def test_configured_run_dir_served_by_another_driver_is_a_warning(
    drivers: Drivers, tmp_path: Path
) -> None:
    run_dir = tmp_path / "admin-run"
    admin = f'\n[admin]\nrun_dir = "{run_dir}"\n'
    first = drivers("a", admin=admin).start()
    second = drivers("b", admin=admin).start()
    attach_ok(drivers.client(second), 54)
    [warning] = admin_warnings(second)
    assert f"another driver already serves {run_dir}" in warning
    drivers.close_clients()
    stop(second)
    stop(first)
