"""Human-readable text for the admin CLI: the status tables and one line per event.

Works on the decoded JSON (messages/admin.py), so the text and ``--json`` never tell
different stories; a missing key prints as ``-`` rather than failing.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

_STREAM_COLUMNS = (
    ("STREAM", "stream_id"),
    ("NAME", "name"),
    ("STATE", "state"),
    ("EPOCH", "epoch"),
    ("PRODUCER", "producer_lease_id"),
    ("CONSUMERS", "consumer_count"),
    ("PROFILE", "profile"),
    ("HEADER", "header_uri"),
)
_LEASE_COLUMNS = (
    ("LEASE", "lease_id"),
    ("CLIENT", "client_id"),
    ("ROLE", "role"),
    ("STREAM", "stream_id"),
    ("NODE", "node_id"),
    ("EPOCH", "epoch"),
    ("STATE", "state"),
    ("EXPIRES_IN_MS", "expires_in_ms"),
)
_DRIVER_KEYS_FIRST = ("instance_id", "state", "pid", "uptime_ms", "aeron_dir", "shm_base_dir")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(_cell(v) for v in value) or "-"
    return str(value)


def _table(columns: Sequence[tuple[str, str]], rows: Sequence[Mapping[str, object]]) -> list[str]:
    cells = [[title for title, _ in columns]]
    cells += [[_cell(row.get(key)) for _, key in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]


def _rows(value: object) -> list[Mapping[str, object]]:
    return [row for row in value if isinstance(row, dict)] if isinstance(value, list) else []


def format_status(status: Mapping[str, object]) -> str:
    """Driver line, streams table, leases table, counters."""
    driver = status.get("driver")
    driver = driver if isinstance(driver, dict) else {}
    keys = [k for k in _DRIVER_KEYS_FIRST if k in driver]
    keys += sorted(k for k in driver if k not in _DRIVER_KEYS_FIRST)
    lines = ["driver  " + "  ".join(f"{k}={_cell(driver[k])}" for k in keys), ""]
    streams = _rows(status.get("streams"))
    lines.append(f"streams ({len(streams)})")
    lines += ["  " + line for line in _table(_STREAM_COLUMNS, streams)] if streams else []
    leases = _rows(status.get("leases"))
    lines += ["", f"leases ({len(leases)})"]
    lines += ["  " + line for line in _table(_LEASE_COLUMNS, leases)] if leases else []
    counters = status.get("counters")
    counters = counters if isinstance(counters, dict) else {}
    lines += ["", f"counters ({len(counters)})"]
    width = max((len(str(k)) for k in counters), default=0)
    lines += [f"  {str(k).ljust(width)}  {v}" for k, v in sorted(counters.items())]
    return "\n".join(lines)


def format_event(event: Mapping[str, object]) -> str:
    """``HH:MM:SS.mmm kind key=value ...`` in local time of publication."""
    wall_ns = event.get("wall_ns")
    stamp = "--:--:--.---"
    if isinstance(wall_ns, int):
        seconds, ns = divmod(wall_ns, 1_000_000_000)
        with contextlib.suppress(OverflowError, OSError, ValueError):  # out of time_t's range
            stamp = time.strftime("%H:%M:%S", time.localtime(seconds)) + f".{ns // 1_000_000:03d}"
    fields = event.get("fields")
    pairs = fields.items() if isinstance(fields, dict) else ()
    text = " ".join(f"{k}={_cell(v)}" for k, v in pairs)
    return f"{stamp} {event.get('kind', '?')} {text}".rstrip()
