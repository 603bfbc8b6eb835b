"""The public API of ``actors`` is what embedding needs, and the wheel ships it typed.

Pinned so that widening it (an internal actor class, a policy type ``start_driver_system``
does not take) is a visible decision, not a side effect of an import.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import actors
import actors.admin
import messages
import shm
import tensorpool_client
import tensorpool_config
import tensorpool_launcher

REPO = Path(__file__).resolve().parents[2]
WHEEL_PACKAGES = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"][
    "targets"
]["wheel"]["packages"]

EMBEDDING_API = [
    "Clock",
    "DriverStatus",
    "DriverSystem",
    "EventSink",
    "LeaseStatus",
    "ManualClock",
    "MonotonicClock",
    "Outbox",
    "StreamStatus",
    "run_driver",
    "start_driver_system",
]


def test_actors_exports_exactly_the_embedding_api() -> None:
    assert sorted(actors.__all__) == EMBEDDING_API


def test_every_export_resolves() -> None:
    for name in actors.__all__:
        assert getattr(actors, name) is not None, name
    assert actors.run_driver is tensorpool_launcher.run_driver
    assert not hasattr(actors, "DriverActor")
    assert not hasattr(actors, "RestartIntensity")


def test_every_package_export_resolves() -> None:
    # shm and tensorpool_client load their numpy/pyaeron parts on first use: a name missing
    # from their lazy tables would only fail here, or in a user's program.
    packages = (actors.admin, messages, shm, tensorpool_client, tensorpool_config)
    for package in (*packages, tensorpool_launcher):
        for name in package.__all__:
            assert getattr(package, name) is not None, f"{package.__name__}.{name}"


def test_import_actors_does_not_load_the_launcher() -> None:
    child = (
        "import json, sys, actors\n"
        "before = 'tensorpool_launcher' in sys.modules\n"
        "actors.run_driver\n"
        "print(json.dumps([before, 'tensorpool_launcher.process' in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", child], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == [False, True]


def test_every_installed_package_is_typed() -> None:
    assert "tensorpool_launcher" in WHEEL_PACKAGES  # run_driver and the console script
    for package in WHEEL_PACKAGES:
        assert (REPO / package / "py.typed").is_file(), package


def test_the_wheel_ships_the_launcher_typed_packages_and_scripts(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    assert uv is not None, "uv is how this project builds (README)"
    subprocess.run(
        [uv, "build", "--wheel", "--offline", "--out-dir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=120,
    )
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = (n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    for package in WHEEL_PACKAGES:
        assert f"{package}/py.typed" in names, package
    assert "tensorpool_launcher/process.py" in names
    assert "launcher.py" not in names  # the checkout shim; embedding uses actors.run_driver
    assert "tensorpool-driver = tensorpool_launcher.cli:main" in scripts
