"""Where region files live: ``<base>/tensorpool-<user>/<namespace>/<stream>/<epoch>/`` (§5).

Pure functions (no filesystem access) apart from reading the effective user's name; the
containment checks that touch the filesystem are in ``shm.safe_fs``.
"""

from __future__ import annotations

import os
import pwd
import re
from typing import TYPE_CHECKING, Final

from shm.errors import PathError

if TYPE_CHECKING:
    from pathlib import Path

HEADER_RING_NAME: Final = "header.ring"
_UNSAFE_USER_CHARS: Final = re.compile(r"[^A-Za-z0-9_-]")
_NAMESPACE: Final = re.compile(r"[A-Za-z0-9_-]+")
_U32_MAX: Final = 0xFFFFFFFF
_U64_MAX: Final = 0xFFFFFFFFFFFFFFFF


def sanitise_user(name: str | None) -> str:
    """Every character outside ``[A-Za-z0-9_-]`` becomes ``_``; ``unknown`` if there is none."""
    if not name:
        return "unknown"
    return _UNSAFE_USER_CHARS.sub("_", name)


def user_dir_name(uid: int | None = None) -> str:
    """``tensorpool-<user>`` for the effective uid (or ``uid``), from its passwd entry (A-27)."""
    try:
        name: str | None = pwd.getpwuid(os.geteuid() if uid is None else uid).pw_name
    except KeyError:
        name = None
    return f"tensorpool-{sanitise_user(name)}"


def validate_namespace(namespace: str) -> str:
    """Return ``namespace`` if it matches ``[A-Za-z0-9_-]+``, else raise PathError."""
    if not _NAMESPACE.fullmatch(namespace):
        raise PathError(f"namespace {namespace!r} must match [A-Za-z0-9_-]+")
    return namespace


def directory_mode(file_mode: int) -> int:
    """The mode of every directory the driver creates: the file mode plus owner/group execute.

    shm-layout.md §5.1 step 3 and A-30 (``0660`` -> ``0770``, ``0600`` -> ``0710``); one
    function so the namespace directories made at start-up and the stream/epoch directories
    made while provisioning cannot disagree.
    """
    return file_mode | 0o110


def namespace_dir(base_dir: Path, namespace: str) -> Path:
    """``<base_dir>/tensorpool-<user>/<namespace>``: one driver's share of the base dir."""
    if not base_dir.is_absolute():
        raise PathError(f"base dir {str(base_dir)!r} is not absolute")
    return base_dir / user_dir_name() / validate_namespace(namespace)


def stream_dir(base_dir: Path, namespace: str, stream_id: int) -> Path:
    """The directory holding every epoch of ``stream_id``."""
    if not 0 <= stream_id <= _U32_MAX:
        raise PathError(f"stream id {stream_id} is not a uint32")
    return namespace_dir(base_dir, namespace) / str(stream_id)


def epoch_dir(base_dir: Path, namespace: str, stream_id: int, epoch: int) -> Path:
    """The directory of one epoch of a stream."""
    if not 0 <= epoch <= _U64_MAX:
        raise PathError(f"epoch {epoch} is not a uint64")
    return stream_dir(base_dir, namespace, stream_id) / str(epoch)


def header_ring_path(base_dir: Path, namespace: str, stream_id: int, epoch: int) -> Path:
    """``.../<epoch>/header.ring``."""
    return epoch_dir(base_dir, namespace, stream_id, epoch) / HEADER_RING_NAME


def pool_path(base_dir: Path, namespace: str, stream_id: int, epoch: int, pool_id: int) -> Path:
    """``.../<epoch>/<pool_id>.pool``."""
    return epoch_dir(base_dir, namespace, stream_id, epoch) / pool_file_name(pool_id)


def pool_file_name(pool_id: int) -> str:
    """``<pool_id>.pool`` (unsigned decimal)."""
    if not 0 <= pool_id <= 0xFFFF:
        raise PathError(f"pool id {pool_id} is not a uint16")
    return f"{pool_id}.pool"


def is_epoch_name(name: str) -> bool:
    """An epoch directory name: a uint64 in unpadded decimal, as ``epoch_dir`` writes it.

    Anything else (``0100``, a number past 2^64-1, ``.build-...``) is not an epoch: counted as
    one it would push ``next_epoch`` past the uint64 range or make GC act on another name.
    """
    return (name.isascii() and name.isdigit() and (name == "0" or name[0] != "0")
            and int(name) <= _U64_MAX)
