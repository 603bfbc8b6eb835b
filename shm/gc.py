"""Epoch garbage collection for one stream directory (driver-behaviour.md §9, A-9).

Count-based: the current epoch and referenced epochs are never touched; of the others the
newest ``keep - 1`` stay; older ones go once they are old enough and no other live process
owns them. Hidden build directories left by a crashed provisioning (creator pid dead) go too.
Deletion problems are logged and skipped: GC never fails the caller.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING

from shm.errors import PathError
from shm.paths import HEADER_RING_NAME, is_epoch_name
from shm.provision import BUILD_PREFIX
from shm.safe_fs import open_file_nofollow, require_within
from shm.superblock import MAGIC, SUPERBLOCK_SIZE, Superblock, decode_superblock

if TYPE_CHECKING:
    from collections.abc import Iterable

log = logging.getLogger(__name__)


def pid_alive(pid: int) -> bool:
    """``kill(pid, 0)`` succeeds or fails with EPERM; pids <= 0 are never alive."""
    if pid <= 0 or pid > 0x7FFFFFFF:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def collect_epochs(
    stream_dir: Path,
    *,
    current_epoch: int,
    referenced_epochs: Iterable[int],
    keep: int,
    min_age_ns: int,
    allowed_base_dirs: tuple[Path, ...],
    now_monotonic_ns: int,
    own_pid: int,
    now_realtime_ns: int | None = None,
) -> list[Path]:
    """Remove old epoch directories of one stream; returns the directories removed."""
    if keep <= 0:
        return []
    realtime = time.time_ns() if now_realtime_ns is None else now_realtime_ns
    try:
        entries = [e for e in os.scandir(stream_dir) if e.is_dir(follow_symlinks=False)]
    except OSError as exc:
        log.debug("epoch gc: cannot list %s: %s", stream_dir, exc)
        return []
    removed = _collect_builds(entries, own_pid, allowed_base_dirs)
    excluded = {current_epoch, *referenced_epochs}
    epochs = sorted((int(e.name) for e in entries if is_epoch_name(e.name)), reverse=True)
    candidates = [epoch for epoch in epochs if epoch not in excluded][max(keep, 1) - 1:]
    for epoch in candidates:
        path = stream_dir / str(epoch)
        if _eligible(path, min_age_ns=min_age_ns, now_monotonic_ns=now_monotonic_ns,
                     now_realtime_ns=realtime, own_pid=own_pid,
                     allowed_base_dirs=allowed_base_dirs):
            removed.extend(_remove(path))
    return removed


def _collect_builds(
    entries: list[os.DirEntry[str]], own_pid: int, allowed_base_dirs: tuple[Path, ...]
) -> list[Path]:
    removed: list[Path] = []
    for entry in entries:
        if not entry.name.startswith(BUILD_PREFIX):
            continue
        pid_text = entry.name[len(BUILD_PREFIX):].split("-", 1)[0]
        if not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid in {own_pid, os.getpid()} or pid_alive(pid):
            continue
        path = _inside(entry.path, allowed_base_dirs)
        if path is not None:
            removed.extend(_remove(path))
    return removed


def _eligible(
    path: Path, *, min_age_ns: int, now_monotonic_ns: int, now_realtime_ns: int, own_pid: int,
    allowed_base_dirs: tuple[Path, ...],
) -> bool:
    if _inside(str(path), allowed_base_dirs) is None:
        return False
    superblock = _read_header_superblock(path)
    if superblock is not None and superblock.activity_timestamp_ns != 0:
        age = now_monotonic_ns - superblock.activity_timestamp_ns
    else:
        try:
            age = now_realtime_ns - path.lstat().st_mtime_ns
        except OSError:
            return False
    if age < min_age_ns:
        return False
    return not (superblock is not None and superblock.pid != own_pid
                and pid_alive(superblock.pid))


def _read_header_superblock(path: Path) -> Superblock | None:
    try:
        fd = open_file_nofollow(path / HEADER_RING_NAME, os.O_RDONLY | os.O_NONBLOCK)
    except (OSError, PathError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.pread(fd, SUPERBLOCK_SIZE, 0)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) < SUPERBLOCK_SIZE:
        return None
    superblock = decode_superblock(data)
    return superblock if superblock.magic == MAGIC else None


def _inside(path: str, allowed_base_dirs: tuple[Path, ...]) -> Path | None:
    try:
        return require_within(Path(path), allowed_base_dirs)
    except PathError as exc:
        log.warning("epoch gc: skipping %s: %s", path, exc)
        return None


def _remove(path: Path) -> list[Path]:
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        return []
    except OSError as exc:
        log.warning("epoch gc: cannot remove %s: %s", path, exc)
        return []
    log.info("epoch gc: removed %s", path)
    return [path]
