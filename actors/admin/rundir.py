"""The admin plane's run directory: owner-only, never someone else's, never through a symlink.

Anyone who can write to the run directory can replace the status socket with their own and
answer ``tensorpool status`` in the driver's name, or read what the driver tells its admins.
So the directory is created 0700, an existing one must be ours and writable by nobody else,
and every ancestor must be owned by us or root and not writable by others unless sticky (the
rule OpenSSH applies to ``~/.ssh``): ``/tmp`` itself is fine, a world-writable parent is not.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from pathlib import Path

RUN_DIR_MODE: Final = 0o700
SOCKET_MODE: Final = 0o600
_OTHERS_WRITE: Final = stat.S_IWGRP | stat.S_IWOTH


class AdminStartError(Exception):
    """The admin plane refused to start; the launcher prints the message and exits 2."""


class AdminConfigError(AdminStartError):
    """The ``[admin]`` configuration is unusable (TCP without valid CURVE keys, ...)."""


def prepare_run_dir(run_dir: Path) -> None:
    """Create ``run_dir`` (and missing parents) 0700, or check that an existing one is safe."""
    if not run_dir.is_absolute():
        raise AdminStartError(f"admin run dir {str(run_dir)!r} is not absolute")
    missing: list[Path] = []
    probe = run_dir
    while not os.path.lexists(probe):
        missing.append(probe)
        probe = probe.parent
    _check_ancestors(probe if missing else run_dir.parent)
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=RUN_DIR_MODE)
        except FileExistsError:
            pass  # a concurrent creator; checked below like any existing directory
        except OSError as exc:
            raise AdminStartError(f"cannot create admin run dir {str(directory)!r}: {exc}") from exc
    for directory in (*reversed(missing[1:]), run_dir):
        _check_owned_private(directory)


def _check_owned_private(directory: Path) -> None:
    try:
        st = os.lstat(directory)
    except OSError as exc:
        raise AdminStartError(f"admin run dir {str(directory)!r}: {exc}") from exc
    if stat.S_ISLNK(st.st_mode):
        raise AdminStartError(f"admin run dir {str(directory)!r} is a symlink; refusing")
    if not stat.S_ISDIR(st.st_mode):
        raise AdminStartError(f"admin run dir {str(directory)!r} is not a directory")
    if st.st_uid != os.geteuid():
        raise AdminStartError(
            f"admin run dir {str(directory)!r} is owned by uid {st.st_uid}, not by this user"
            f" (uid {os.geteuid()}); refusing"
        )
    if st.st_mode & _OTHERS_WRITE:
        raise AdminStartError(
            f"admin run dir {str(directory)!r} has mode {stat.S_IMODE(st.st_mode):04o}"
            " (group/world-writable); refusing"
        )


def _check_ancestors(directory: Path) -> None:
    """Every existing ancestor: owned by us or root, and not others-writable unless sticky."""
    for ancestor in (directory, *directory.parents):
        try:
            st = ancestor.stat()
        except OSError as exc:
            raise AdminStartError(f"admin run dir ancestor {str(ancestor)!r}: {exc}") from exc
        if not stat.S_ISDIR(st.st_mode):
            raise AdminStartError(f"admin run dir ancestor {str(ancestor)!r} is not a directory")
        if st.st_uid not in {0, os.geteuid()}:
            raise AdminStartError(
                f"admin run dir ancestor {str(ancestor)!r} is owned by uid {st.st_uid}; refusing"
            )
        if st.st_mode & _OTHERS_WRITE and not st.st_mode & stat.S_ISVTX:
            raise AdminStartError(
                f"admin run dir ancestor {str(ancestor)!r} is group/world-writable"
                " without the sticky bit; refusing"
            )


def clear_stale_socket(path: Path) -> None:
    """Remove a socket file left by a dead driver; refuse if a live process still listens."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise AdminStartError(f"{str(path)!r} exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
    except OSError as exc:
        if exc.errno not in {errno.ECONNREFUSED, errno.ENOENT}:
            raise AdminStartError(f"cannot probe admin socket {str(path)!r}: {exc}") from exc
    else:
        raise AdminStartError(
            f"another driver is already serving {str(path)!r} (same instance_id?); refusing"
        )
    finally:
        probe.close()
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def secure_socket_file(path: Path) -> None:
    """Owner-only access to a freshly bound socket file (the 0700 directory already guards it)."""
    path.chmod(SOCKET_MODE)


def remove_socket_file(path: Path) -> None:
    """Remove our socket file at stop, if it is still a socket (never someone else's file)."""
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            path.unlink()
