"""The import boundaries the tree is built on, checked over every module of the installed code.

Each runtime has one home: Aeron (pyaeron) only the gateway thread and the client library,
zmq only the admin plane and the admin CLI. The driver (``actors``) and the client library
(``tensorpool_client``) never import each other; the shared layers (``messages``, ``shm``,
``tensorpool_config``) import neither, nor the composition root (``tensorpool_launcher``),
which alone may import everything. Tests, benches and examples are users of the code and
are not checked.

To move a module to another runtime's home, edit the tables below.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECKED = ("actors", "messages", "shm", "tensorpool_client", "tensorpool_config",
           "tensorpool_launcher", "tensorpool_bridge", "launcher.py")  # fmt: skip

# Third-party runtimes -> the only places (file, or folder ending in "/") that may import them.
RUNTIME_OWNERS: dict[str, tuple[str, ...]] = {
    # The bridge is a transport endpoint of its own: its network thread owns its Aeron client
    # (config.py only asks pyaeron for Aeron's default directory).
    "pyaeron": (
        "actors/gateway/",
        "tensorpool_client/",
        "tensorpool_bridge/network.py",
        "tensorpool_bridge/config.py",
    ),
    "zmq": (
        "actors/admin/",
        "tensorpool_client/admin_cli.py",
        "tensorpool_bridge/status.py",
        "tensorpool_bridge/cli.py",
    ),
}

# Our packages: importer folder -> the packages it must never import.
LAYERS: dict[str, tuple[str, ...]] = {
    "actors/": ("tensorpool_client", "tensorpool_launcher", "tensorpool_bridge"),
    # The bridge is a client of two drivers: it uses the client library and the actor runtime
    # (HSM engine, clock, supervision policy), never the launcher.
    "tensorpool_bridge/": ("tensorpool_launcher",),
    "tensorpool_client/": ("actors", "tensorpool_launcher", "tensorpool_bridge"),
    "messages/": ("actors", "tensorpool_client", "tensorpool_launcher"),
    "shm/": ("actors", "tensorpool_client", "tensorpool_launcher"),
    "tensorpool_config/": ("actors", "tensorpool_client", "tensorpool_launcher"),
}

# (importer file, imported package): the few deliberate exceptions, each with its reason.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("actors/__init__.py", "tensorpool_launcher"): (
        "the public API re-exports run_driver from a module __getattr__, so `import actors` "
        "never loads the launcher (tests/architecture/test_public_api.py checks that)"
    ),
}


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    imported: str
    rule: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.imported} ({self.rule})"


def _modules() -> list[Path]:
    found: list[Path] = []
    for name in CHECKED:
        path = REPO / name
        found.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return found


def _imported_names(tree: ast.Module, module: str) -> list[tuple[int, str]]:
    """Every absolute module name imported anywhere (functions and TYPE_CHECKING included)."""
    package = module.removesuffix(".py").split("/")[:-1]
    if module.endswith("__init__.py"):
        package = module.split("/")[:-1]
    names: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            if node.module is not None:
                names.append((node.lineno, ".".join([*base, node.module])))
            else:  # `from .. import x`: the names are modules
                names.extend((node.lineno, ".".join([*base, a.name])) for a in node.names)
    return names


def _owns(module: str, places: tuple[str, ...]) -> bool:
    return any(module.startswith(p) if p.endswith("/") else module == p for p in places)


def check(module: str, source: str) -> list[Violation]:
    """The boundary violations of one module (``module`` is its repo-relative posix path)."""
    violations: list[Violation] = []
    for line, name in _imported_names(ast.parse(source), module):
        root = name.split(".")[0]
        owners = RUNTIME_OWNERS.get(root)
        if owners is not None and not _owns(module, owners):
            violations.append(Violation(module, line, name, f"only {', '.join(owners)}"))
        for layer, banned in LAYERS.items():
            if module.startswith(layer) and root in banned and (module, root) not in EXCEPTIONS:
                violations.append(Violation(module, line, name, f"{layer} never imports {root}"))
    return violations


def test_every_module_keeps_the_boundaries() -> None:
    modules = _modules()
    names = {m.relative_to(REPO).as_posix() for m in modules}
    assert {"actors/admin/plane.py", "tensorpool_launcher/process.py", "launcher.py"} <= names
    violations = [
        str(v)
        for path in modules
        for v in check(path.relative_to(REPO).as_posix(), path.read_text(encoding="utf-8"))
    ]
    assert violations == []


def test_every_exception_is_still_used() -> None:
    # A stale exception would silently widen a boundary once the code it excused is gone.
    for module, package in EXCEPTIONS:
        imported = _imported_names(ast.parse((REPO / module).read_text()), module)
        assert any(name.split(".")[0] == package for _, name in imported), (module, package)


@pytest.mark.parametrize(
    ("module", "source", "imported"),
    [
        ("messages/x.py", "import zmq", "zmq"),
        ("actors/runtime/timer.py", "import pyaeron.context", "pyaeron.context"),
        ("actors/driver/actor.py", "from pyaeron import Aeron", "pyaeron"),
        ("tensorpool_client/producer.py", "def f():\n    import zmq.auth", "zmq.auth"),
        (
            "actors/admin/plane.py",
            "from tensorpool_client.admin_cli import x",
            "tensorpool_client.admin_cli",
        ),
        ("actors/system.py", "from tensorpool_launcher import run_driver", "tensorpool_launcher"),
        ("tensorpool_client/control.py", "from actors.system import DriverSystem", "actors.system"),
        ("shm/paths.py", "import tensorpool_client", "tensorpool_client"),
        ("tensorpool_config/model.py", "from actors import clock", "actors"),
        (
            "messages/admin.py",
            "from tensorpool_launcher.cli import main",
            "tensorpool_launcher.cli",
        ),
        ("actors/admin/__init__.py", "from ... import tensorpool_client", "tensorpool_client"),
        ("tensorpool_client/x.py", "if TYPE_CHECKING:\n    from actors import A", "actors"),
    ],
)
def test_a_crossing_is_reported(module: str, source: str, imported: str) -> None:
    assert [v.imported for v in check(module, source)] == [imported]


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("actors/gateway/control.py", "import pyaeron"),
        ("actors/gateway/outbox.py", "import pyaeron"),
        ("actors/admin/curve.py", "import zmq.auth.thread"),
        ("tensorpool_client/admin_cli.py", "import zmq"),
        ("tensorpool_client/aeron_thread.py", "import pyaeron"),
        ("tensorpool_launcher/process.py", "from actors.admin import start_admin"),
        ("actors/admin/plane.py", "from messages.admin import CMD_PING"),
        ("actors/__init__.py", "from tensorpool_launcher.process import run_driver"),
    ],
)
def test_an_allowed_import_is_not_reported(module: str, source: str) -> None:
    assert check(module, source) == []
