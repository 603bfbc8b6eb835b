"""The admin plane's wire contract, shared by the driver side (actors/admin.py) and the CLI.

It lives in ``client/`` because the CLI must never import ``actors/``; the driver side imports
it from here. No zmq here: only names, paths and the JSON shapes.

Requests (one frame, UTF-8 JSON object) on the status socket (REQ -> ROUTER):
``{"cmd": "ping"}`` -> ``{"ok": true, "pong": true, "instance_id": ...}``;
``{"cmd": "status"}`` -> ``{"ok": true, "status": {"driver": {...}, "streams": [...],
"leases": [...], "counters": {...}}}``. Anything wrong -> ``{"ok": false, "error": "..."}``.

Events (one frame, UTF-8 JSON object) on the events socket (PUB):
``{"kind": ..., "timestamp_ns": <driver clock>, "wall_ns": <time.time_ns() at publish>,
"fields": {...}}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from pathlib import Path

STATUS_SOCKET_NAME: Final = "admin.sock"
EVENTS_SOCKET_NAME: Final = "events.sock"

MAX_REQUEST_BYTES: Final = 64 * 1024  # larger requests get an error reply
CMD_PING: Final = "ping"
CMD_STATUS: Final = "status"


def status_socket_path(run_dir: Path) -> Path:
    """The filesystem path of the status (REQ/ROUTER) socket in a driver's run directory."""
    return run_dir / STATUS_SOCKET_NAME


def events_socket_path(run_dir: Path) -> Path:
    """The filesystem path of the events (PUB) socket in a driver's run directory."""
    return run_dir / EVENTS_SOCKET_NAME


def ipc_endpoint(path: Path) -> str:
    """The zmq endpoint of a unix socket path."""
    return f"ipc://{path}"
