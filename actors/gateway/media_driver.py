"""The Aeron media driver behind the gateway: use a live one, else embed one.

Clients with default settings look for the media driver in one directory, so the launcher
either joins the driver already running there or starts an embedded one in that directory.
It never wipes a live driver's directory (``dir_delete_on_start=False``), and it recognises
the directory of a driver that was killed: its CnC file names a dead pid, or its heartbeat
has stopped. Aeron's own check alone cannot tell: a dead driver's heartbeat looks fresh for
the whole 10 s driver timeout, and a client attached to it blocks forever in
``add_subscription``.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyaeron

_log = logging.getLogger(__name__)

CNC_FILE = "cnc.dat"
# cnc.dat metadata (CnC version 0.2.x): six int32 lengths/version, client liveness timeout,
# start timestamp, then the pid of the media driver process.
_CNC_META = struct.Struct("<iiiiiiqqq")
_CNC_VERSION_MAJOR_0_MINOR_2 = 0x000200
# A live media driver refreshes its heartbeat about once a second, even with no client
# (measured: age up to ~980 ms); older than this means the driver is gone.
HEARTBEAT_STALE_MS = 2_000


class MediaDriverError(RuntimeError):
    """The Aeron directory cannot be used (busy, unwritable, bad path)."""


@dataclass(slots=True)
class MediaDriverHandle:
    """The media driver the gateway talks to; ``close`` stops it only if we started it."""

    aeron_dir: str
    embedded: bool
    _driver: Any = None

    def close(self) -> None:
        """Stop the embedded driver (its directory is removed); nothing for an external one."""
        if self._driver is not None:
            driver, self._driver = self._driver, None
            driver.close()

    def describe(self) -> str:
        return f"{self.aeron_dir} ({'embedded' if self.embedded else 'external'})"


def resolve_aeron_dir(cli_dir: str | None, config_dir: str) -> str:
    """``--aeron-dir``, else ``driver.aeron_dir`` (env already applied), else Aeron's default."""
    if cli_dir:
        return str(Path(cli_dir).absolute())
    if config_dir:
        return str(Path(config_dir).absolute())
    return str(pyaeron.default_path())


def cnc_pid(aeron_dir: str) -> int | None:
    """The media driver pid recorded in ``cnc.dat``, or None if unreadable/unknown layout."""
    try:
        with Path(aeron_dir, CNC_FILE).open("rb") as f:
            raw = f.read(_CNC_META.size)
    except OSError:
        return None
    if len(raw) < _CNC_META.size:
        return None
    fields = _CNC_META.unpack(raw)
    version, pid = fields[0], fields[8]
    if version >> 8 != _CNC_VERSION_MAJOR_0_MINOR_2 >> 8 or pid <= 0:
        return None
    return int(pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def driver_is_live(aeron_dir: str) -> bool:
    """True when a media driver is running on ``aeron_dir`` right now."""
    if not Path(aeron_dir, CNC_FILE).exists():
        return False
    pid = cnc_pid(aeron_dir)
    if pid is not None and pid != os.getpid() and not _pid_alive(pid):
        return False
    return bool(pyaeron.is_driver_active(aeron_dir, HEARTBEAT_STALE_MS))


def open_media_driver(aeron_dir: str) -> MediaDriverHandle:
    """Join the live media driver on ``aeron_dir`` or start an embedded one there."""
    if driver_is_live(aeron_dir):
        return MediaDriverHandle(aeron_dir, embedded=False)
    stale = Path(aeron_dir, CNC_FILE).exists()
    if stale:
        _log.warning("replacing the stale Aeron directory of a dead media driver: %s", aeron_dir)
    try:
        # Only a directory just proven dead is wiped; a live one is never touched, and a
        # driver that appeared since the check makes Aeron refuse with EBUSY below.
        driver = pyaeron.MediaDriver(
            dir=aeron_dir,
            dir_delete_on_start=stale and not driver_is_live(aeron_dir),
            dir_delete_on_shutdown=True,
            threading="shared",
        )
    except pyaeron.AeronError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise MediaDriverError(f"cannot start a media driver in {aeron_dir}: {first_line}") from exc
    return MediaDriverHandle(aeron_dir, embedded=True, _driver=driver)
