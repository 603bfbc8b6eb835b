"""``python launcher.py status`` never loads the driver: no pykka, numpy, pyaeron or actor tree.

A user asking what a driver holds should not pay for (or be broken by) the driver's own
dependencies, and the admin CLI must work from any shell. The run is real: a subprocess runs
``launcher.py status`` as ``python launcher.py`` would, against a live admin plane, and then
reports which modules it had loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors.admin import AdminPlane

REPO = Path(__file__).resolve().parents[2]

_CHILD = """\
import json, runpy, sys
sys.argv = ["launcher.py", *sys.argv[2:]]
try:
    runpy.run_path("launcher.py", run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = None
with open(REPORT, "w") as report:
    json.dump({"code": code, "modules": sorted(sys.modules)}, report)
"""


def _run_launcher(report: Path, *args: str) -> tuple[object, set[str]]:
    child = _CHILD.replace("REPORT", repr(str(report)))
    result = subprocess.run(
        [sys.executable, "-c", child, "launcher.py", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(report.read_text())
    return loaded["code"], {name.split(".")[0] for name in loaded["modules"]}


def test_status_answers_without_loading_the_driver(
    plane: AdminPlane, config_file: Path, tmp_path: Path
) -> None:
    assert plane.endpoints
    code, roots = _run_launcher(tmp_path / "modules.json", "status", "--config", str(config_file))
    assert code == 0  # a real answer from the plane was read and shown
    assert {"zmq", "tensorpool_client", "tensorpool_launcher"} <= roots  # the path ran
    assert not roots & {"actors", "numpy", "pykka", "pyaeron"}


def test_the_check_sees_the_driver_when_it_is_loaded(tmp_path: Path) -> None:
    # The same probe on `--help` after importing the actor system: proves the check can fail.
    code, roots = _run_launcher(tmp_path / "modules.json", "--help")
    assert code == 0
    assert "pykka" not in roots  # --help is light too
    child = "import actors, json, sys; print(json.dumps(sorted(sys.modules)))"
    heavy = subprocess.run(
        [sys.executable, "-c", child], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert {"actors", "numpy", "pykka"} <= {m.split(".")[0] for m in json.loads(heavy.stdout)}
