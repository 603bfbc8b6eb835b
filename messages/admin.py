"""The admin plane's wire contract, shared by the driver side (actors/admin/) and the admin CLI.

A message format like the SBE schemas beside it, so it lives in ``messages/``, which both
sides may import (the driver must not import ``tensorpool_client`` nor the client ``actors``).
No zmq here: only names, paths and the JSON shapes.

Requests (one frame, UTF-8 JSON object) on the status socket (REQ -> ROUTER):
``{"cmd": "ping"}`` -> ``{"ok": true, "pong": true, "instance_id": ...}``;
``{"cmd": "status"}`` -> ``{"ok": true, "status": {"driver": {...}, "streams": [...],
"leases": [...], "counters": {...}}}``;
``{"cmd": "probe", "token": "<1..64 characters>"}`` -> ``{"ok": true, "probe": "<token>"}``,
and an ``admin.probe`` event carrying ``{"token": ...}`` is published right after: a
subscriber that receives its own token has provably joined, so it misses no later event
(zmq SUB sockets join asynchronously). Clients ignore ``admin.probe`` events.
Anything wrong -> ``{"ok": false, "error": "..."}``.

Events (one frame, UTF-8 JSON object) on the events socket (PUB):
``{"kind": ..., "timestamp_ns": <driver clock>, "wall_ns": <time.time_ns() at publish>,
"fields": {...}}``.

The status socket is also served over TCP when ``admin.tcp_endpoint`` is set, then only with
CURVE: the client needs the server's public key and a key pair whose public key is listed in
``admin.curve_authorized_clients`` (keys are 40-character Z85 strings).
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
CMD_PROBE: Final = "probe"
PROBE_EVENT_KIND: Final = "admin.probe"
MAX_PROBE_TOKEN_CHARS: Final = 64


def status_socket_path(run_dir: Path) -> Path:
    """The filesystem path of the status (REQ/ROUTER) socket in a driver's run directory."""
    return run_dir / STATUS_SOCKET_NAME


def events_socket_path(run_dir: Path) -> Path:
    """The filesystem path of the events (PUB) socket in a driver's run directory."""
    return run_dir / EVENTS_SOCKET_NAME


def ipc_endpoint(path: Path) -> str:
    """The zmq endpoint of a unix socket path."""
    return f"ipc://{path}"
