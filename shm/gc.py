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
from typing import TYPE_CHECKING, Final

from shm.errors import PathError
from shm.paths import HEADER_RING_NAME, is_epoch_name
from shm.provision import BUILD_PREFIX
from shm.safe_fs import open_dir_nofollow, require_within
from shm.superblock import MAGIC, SUPERBLOCK_SIZE, Superblock, decode_superblock

if TYPE_CHECKING:
    from collections.abc import Iterable

log = logging.getLogger(__name__)

_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS: Final = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC


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
    """Remove old epoch directories of one stream; returns the directories removed.

    The stream directory is checked against ``allowed_base_dirs`` once and then held open:
    every read and removal below it is relative to that descriptor and follows no symlink,
    so swapping a path component after the check cannot redirect a deletion.
    """
    if keep <= 0:
        return []
    realtime = time.time_ns() if now_realtime_ns is None else now_realtime_ns
    real = _inside(str(stream_dir), allowed_base_dirs)
    if real is None:
        return []
    try:
        sfd = open_dir_nofollow(real)
    except (OSError, PathError) as exc:
        log.debug("epoch gc: cannot open %s: %s", stream_dir, exc)
        return []
    try:
        try:
            with os.scandir(sfd) as scan:
                names = [e.name for e in scan if e.is_dir(follow_symlinks=False)]
        except OSError as exc:
            log.debug("epoch gc: cannot list %s: %s", stream_dir, exc)
            return []
        removed = _collect_builds(sfd, real, names, own_pid)
        excluded = {current_epoch, *referenced_epochs}
        epochs = sorted((int(n) for n in names if is_epoch_name(n)), reverse=True)
        candidates = [epoch for epoch in epochs if epoch not in excluded][max(keep, 1) - 1:]
        for epoch in candidates:
            name = str(epoch)
            if _eligible(sfd, name, min_age_ns=min_age_ns, now_monotonic_ns=now_monotonic_ns,
                         now_realtime_ns=realtime, own_pid=own_pid):
                removed.extend(_remove(sfd, real, name))
        return removed
    finally:
        os.close(sfd)


def _collect_builds(sfd: int, real: Path, names: list[str], own_pid: int) -> list[Path]:
    removed: list[Path] = []
    for name in names:
        if not name.startswith(BUILD_PREFIX):
            continue
        pid_text = name[len(BUILD_PREFIX):].split("-", 1)[0]
        if not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid in {own_pid, os.getpid()} or pid_alive(pid):
            continue
        removed.extend(_remove(sfd, real, name))
    return removed


def _eligible(
    sfd: int, name: str, *, min_age_ns: int, now_monotonic_ns: int, now_realtime_ns: int,
    own_pid: int,
) -> bool:
    superblock = _read_header_superblock(sfd, name)
    # A timestamp ahead of our monotonic clock was written before this boot (a persistent
    # base dir): it says nothing about age, and trusting it would keep the epoch forever.
    if superblock is not None and 0 < superblock.activity_timestamp_ns <= now_monotonic_ns:
        age = now_monotonic_ns - superblock.activity_timestamp_ns
    else:
        try:
            age = now_realtime_ns - os.stat(name, dir_fd=sfd, follow_symlinks=False).st_mtime_ns
        except OSError:
            return False
    if age < min_age_ns:
        return False
    return not (superblock is not None and superblock.pid != own_pid
                and pid_alive(superblock.pid))


def _read_header_superblock(sfd: int, name: str) -> Superblock | None:
    try:
        efd = os.open(name, _DIR_FLAGS, dir_fd=sfd)
    except OSError:
        return None
    try:
        fd = os.open(HEADER_RING_NAME, _FILE_FLAGS, dir_fd=efd)
    except OSError:
        return None
    finally:
        os.close(efd)
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


def _remove(sfd: int, real: Path, name: str) -> list[Path]:
    path = real / name
    try:
        shutil.rmtree(name, dir_fd=sfd)
    except FileNotFoundError:
        return []
    except OSError as exc:
        log.warning("epoch gc: cannot remove %s: %s", path, exc)
        return []
    log.info("epoch gc: removed %s", path)
    return [path]
