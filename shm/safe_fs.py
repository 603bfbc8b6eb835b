"""Filesystem steps that must not be fooled by symlinks or ``..``: containment and no-follow walks.

Every directory component is opened with ``O_NOFOLLOW`` relative to its parent's descriptor,
so a symlink planted anywhere below ``/`` makes the walk fail with ELOOP instead of silently
redirecting it (a realpath check alone would leave a race between check and open).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Final

from shm.errors import PathError

_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def is_within(path: Path, base: Path) -> bool:
    """True when ``path`` equals ``base`` or lies below it on a ``/`` boundary (both canonical)."""
    p, b = str(path), str(base).rstrip("/") or "/"
    return p == b or p.startswith(b + "/") or b == "/"


def canonical_bases(allowed_base_dirs: tuple[Path, ...]) -> tuple[Path, ...]:
    """Resolve the allowlist once (config already canonicalises; this keeps callers honest)."""
    return tuple(Path(os.path.realpath(b)) for b in allowed_base_dirs)


def require_within(path: Path, allowed_base_dirs: tuple[Path, ...]) -> Path:
    """Return ``realpath(path)`` if it is inside an allowed base dir, else raise PathError."""
    if not path.is_absolute():
        raise PathError(f"path {str(path)!r} is not absolute")
    if not allowed_base_dirs:
        raise PathError("no allowed base dirs configured")
    real = Path(os.path.realpath(path))
    if not any(is_within(real, base) for base in canonical_bases(allowed_base_dirs)):
        raise PathError(f"path {str(real)!r} is outside the allowed base dirs")
    return real


def split_components(path: Path) -> list[str]:
    """Components of an absolute path; PathError on relative paths and ``.``/``..``."""
    if not path.is_absolute():
        raise PathError(f"path {str(path)!r} is not absolute")
    parts = [p for p in str(path).split("/") if p]
    if any(p in {".", ".."} for p in parts):
        raise PathError(f"path {str(path)!r} has a '.' or '..' component")
    return parts


def open_dir_nofollow(path: Path) -> int:
    """Open directory ``path`` walking from ``/`` with O_NOFOLLOW at every component."""
    fd = os.open("/", _DIR_FLAGS)
    try:
        for part in split_components(path):
            fd = _step(fd, part, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_file_nofollow(path: Path, flags: int) -> int:
    """Open file ``path`` (no symlink anywhere on the way); the caller fstat-checks the type."""
    parent = open_dir_nofollow(path.parent)
    try:
        return os.open(path.name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PathError(f"{str(path)!r} is a symlink") from exc
        raise
    finally:
        os.close(parent)


def make_dirs_nofollow(path: Path, mode: int, *, owned_below: Path | None = None) -> int:
    """Open ``path``, creating missing directories with exactly ``mode`` (explicit fchmod).

    Returns a descriptor of the last directory. Existing components are kept as they are;
    a symlink or non-directory anywhere is a PathError. Every directory strictly below
    ``owned_below`` (a prefix of ``path``) must belong to our effective uid and must not be
    world-writable unless ``mode`` is: in a shared, sticky parent such as /dev/shm another
    user could otherwise pre-create ``tensorpool-<us>`` and tamper with what we put there.
    """
    parts = split_components(path)
    trusted = len(parts) if owned_below is None else len(split_components(owned_below))
    fd = os.open("/", _DIR_FLAGS)
    try:
        for index, part in enumerate(parts):
            try:
                os.mkdir(part, mode, dir_fd=fd)
            except FileExistsError:
                fd = _step(fd, part, path)
            else:
                fd = _step(fd, part, path)
                os.fchmod(fd, mode)
            if index >= trusted:
                _require_ours(fd, part, path, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _require_ours(fd: int, part: str, path: Path, mode: int) -> None:
    st = os.fstat(fd)
    if st.st_uid != os.geteuid():
        raise PathError(
            f"directory {part!r} of {str(path)!r} belongs to uid {st.st_uid}, not to us "
            f"(uid {os.geteuid()}): refusing to use it"
        )
    if st.st_mode & 0o002 and not mode & 0o002:
        raise PathError(
            f"directory {part!r} of {str(path)!r} is world-writable: refusing to use it"
        )


def _step(parent_fd: int, part: str, path: Path) -> int:
    try:
        child = os.open(part, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PathError(f"component {part!r} of {str(path)!r} is a symlink") from exc
        if exc.errno == errno.ENOTDIR:
            _raise_if_symlink(parent_fd, part, path)
            raise PathError(f"component {part!r} of {str(path)!r} is not a directory") from exc
        raise
    os.close(parent_fd)
    return child


def _raise_if_symlink(parent_fd: int, part: str, path: Path) -> None:
    try:
        st = os.stat(part, dir_fd=parent_fd, follow_symlinks=False)
    except OSError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise PathError(f"component {part!r} of {str(path)!r} is a symlink")
