"""Provisioning one epoch of a stream: its header ring and pools, built out of sight.

The files are created in a hidden ``.build-<pid>-<epoch>-<token>`` directory inside the stream
directory (not all digits, so GC and peers never take it for an epoch) and the directory is
renamed to ``<epoch>/`` only once every superblock is written and synced: a peer sees either
no epoch or a complete one. Any failure removes the build directory.

Space: when prefaulting (or locking) the regions are allocated with ``posix_fallocate`` before
they are touched through the mapping, so a full tmpfs is an ENOSPC error here instead of a
SIGBUS in the middle of the zero fill. On lack of space ``reclaim_space`` (if given; normally
``collect_epochs(..., min_age_ns=0)`` for the stream) runs once and provisioning is retried once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import mmap
import os
import secrets
import shutil
import stat
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import numpy as np

from shm.errors import HugepagesUnavailable, ProvisionError, UriError
from shm.hugepages import huge_page_size, is_hugetlbfs, round_up
from shm.paths import (
    HEADER_RING_NAME,
    directory_mode,
    is_epoch_name,
    pool_file_name,
    stream_dir,
)
from shm.safe_fs import make_dirs_nofollow, require_within
from shm.superblock import (
    encode_superblock,
    header_region_size,
    header_superblock,
    is_power_of_two,
    pool_region_size,
    pool_superblock,
)
from shm.uri import format_region_uri

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

BUILD_PREFIX: Final = ".build-"
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS: Final = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_NO_SPACE: Final = frozenset({errno.ENOSPC, errno.EDQUOT})
_RENAME_NOREPLACE: Final = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvisionRequest:
    """Everything needed to create one epoch; ``pools`` is ((pool_id, stride_bytes), ...)."""

    base_dir: Path
    namespace: str
    allowed_base_dirs: tuple[Path, ...]
    stream_id: int
    epoch: int
    header_nslots: int
    pools: tuple[tuple[int, int], ...]
    permissions_mode: int
    prefault: bool
    mlock: bool
    hugepages: bool
    pid: int
    now_ns: int


@dataclass(frozen=True, slots=True)
class PoolRegion:
    """One provisioned payload pool, as announced."""

    pool_id: int
    stride_bytes: int
    nslots: int
    uri: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvisionedEpoch:
    """A complete, visible epoch.

    With ``mlock`` the locked mappings live in ``locked_maps`` for as long as this object
    (the lock ends when they are unmapped: ``release()`` or garbage collection).
    """

    stream_id: int
    epoch: int
    directory: Path
    header_uri: str
    pools: tuple[PoolRegion, ...]
    locked_maps: tuple[mmap.mmap, ...] = field(default=(), repr=False, compare=False)

    def release(self) -> None:
        """Unmap (and so unlock) the mappings kept for ``mlock``."""
        for mapping in self.locked_maps:
            mapping.close()


class _OutOfSpaceError(Exception):
    pass


def next_epoch(stream_directory: Path, previous_epoch: int, now_ns: int) -> int:
    """``max(previous + 1, now_ns, highest epoch directory on disk + 1)`` (A-10)."""
    highest = 0
    try:
        with os.scandir(stream_directory) as entries:
            for entry in entries:
                if is_epoch_name(entry.name) and entry.is_dir(follow_symlinks=False):
                    highest = max(highest, int(entry.name))
    except FileNotFoundError:
        pass
    return max(previous_epoch + 1, now_ns, highest + 1)


def provision_epoch(
    req: ProvisionRequest, *, reclaim_space: Callable[[], object] | None = None
) -> ProvisionedEpoch:
    """Create the epoch's files; ProvisionError, HugepagesUnavailable or PathError on failure."""
    _validate(req)
    base = require_within(req.base_dir, req.allowed_base_dirs)
    directory = stream_dir(base, req.namespace, req.stream_id)
    on_hugetlbfs = is_hugetlbfs(base)
    if req.hugepages and not on_hugetlbfs:
        raise HugepagesUnavailable(f"hugepages not available: {base} is not on hugetlbfs")
    page = huge_page_size() if on_hugetlbfs else 1
    if page is None:
        raise HugepagesUnavailable("hugepages not available: unknown huge page size")
    uris = _region_uris(req, directory / str(req.epoch))  # before anything is created
    for attempt in range(2):
        try:
            return _build(req, base, directory, page, uris)
        except _OutOfSpaceError as exc:
            if attempt == 0 and reclaim_space is not None:
                reclaim_space()
                continue
            raise ProvisionError(str(exc)) from exc
    raise AssertionError  # pragma: no cover - the loop always returns or raises


def _validate(req: ProvisionRequest) -> None:
    problems = []
    if not 1 <= req.epoch < 1 << 64:
        problems.append(f"epoch {req.epoch} outside 1..2^64-1")
    if not 0 <= req.stream_id < 1 << 32:
        problems.append(f"stream id {req.stream_id} is not a uint32")
    if not (is_power_of_two(req.header_nslots) and req.header_nslots < 1 << 32):
        problems.append(f"header_nslots {req.header_nslots} is not a power of two")
    ids = [pool_id for pool_id, _ in req.pools]
    if len(set(ids)) != len(ids) or not all(1 <= i <= 0xFFFF for i in ids):
        problems.append(f"pool ids {ids} must be unique and in 1..65535")
    for pool_id, stride in req.pools:
        if not (is_power_of_two(stride) and 64 <= stride < 1 << 32):
            problems.append(f"pool {pool_id} stride {stride} is not a power of two >= 64")
    if not 0 <= req.permissions_mode <= 0o777:
        problems.append(f"permissions mode {req.permissions_mode:o} exceeds 0777")
    if not 0 <= req.pid < 1 << 64 or not 0 < req.now_ns < 1 << 64:
        problems.append("pid and now_ns must be uint64, now_ns non-zero")
    if problems:
        raise ProvisionError("; ".join(problems))


def _regions(req: ProvisionRequest, page: int) -> list[tuple[str, int, bytes]]:
    n = req.header_nslots
    common = {"epoch": req.epoch, "stream_id": req.stream_id, "nslots": n, "pid": req.pid,
              "now_ns": req.now_ns}
    regions = [(HEADER_RING_NAME, header_region_size(n),
                encode_superblock(header_superblock(**common)))]
    regions.extend(
        (pool_file_name(pool_id), pool_region_size(n, stride),
         encode_superblock(pool_superblock(pool_id=pool_id, stride_bytes=stride, **common)))
        for pool_id, stride in req.pools
    )
    return [(name, round_up(size, page), sb) for name, size, sb in regions]


def _region_uris(req: ProvisionRequest, final: Path) -> tuple[str, tuple[str, ...]]:
    """The header and pool URIs of the epoch, or ProvisionError if its path cannot be one.

    Formed before the first directory is made, so a path no URI can carry (shm-layout.md §6)
    fails the attach without leaving an unannounceable epoch on disk.
    """
    try:
        return (
            format_region_uri(str(final / HEADER_RING_NAME), req.hugepages),
            tuple(
                format_region_uri(str(final / pool_file_name(pool_id)), req.hugepages)
                for pool_id, _ in req.pools
            ),
        )
    except UriError as exc:
        raise ProvisionError(f"cannot form region URIs: {exc}") from exc


def _build(
    req: ProvisionRequest,
    base: Path,
    directory: Path,
    page: int,
    uris: tuple[str, tuple[str, ...]],
) -> ProvisionedEpoch:
    regions = _regions(req, page)
    dir_mode = directory_mode(req.permissions_mode)
    try:
        sfd = make_dirs_nofollow(directory, dir_mode, owned_below=base)
    except OSError as exc:
        raise _as_error(exc, f"cannot create {directory}") from exc
    try:
        _check_space(sfd, sum(size for _, size, _ in regions), directory)
        epoch_name = str(req.epoch)
        if _exists(sfd, epoch_name):
            raise ProvisionError(f"epoch directory {directory / epoch_name} already exists")
        tmp_name = f"{BUILD_PREFIX}{os.getpid()}-{req.epoch}-{secrets.token_hex(4)}"
        locked: list[mmap.mmap] = []
        try:
            os.mkdir(tmp_name, dir_mode, dir_fd=sfd)
            tfd = os.open(tmp_name, _DIR_FLAGS, dir_fd=sfd)
            try:
                os.fchmod(tfd, dir_mode)
                for name, size, superblock in regions:
                    mapping = _create_region(
                        tfd, name, size, superblock, req, hugetlbfs=page > 1
                    )
                    if mapping is not None:
                        locked.append(mapping)
                os.fsync(tfd)
            finally:
                os.close(tfd)
            _rename_noreplace(sfd, tmp_name, epoch_name, directory)
            os.fsync(sfd)
        except BaseException as exc:
            for mapping in locked:
                mapping.close()
            shutil.rmtree(tmp_name, dir_fd=sfd, ignore_errors=True)
            if isinstance(exc, OSError):
                raise _as_error(exc, f"cannot create epoch {req.epoch} in {directory}") from exc
            raise
    finally:
        os.close(sfd)
    header_uri, pool_uris = uris
    return ProvisionedEpoch(
        stream_id=req.stream_id,
        epoch=req.epoch,
        directory=directory / epoch_name,
        header_uri=header_uri,
        pools=tuple(
            PoolRegion(pool_id, stride, req.header_nslots, uri)
            for (pool_id, stride), uri in zip(req.pools, pool_uris, strict=True)
        ),
        locked_maps=tuple(locked),
    )


def _create_region(
    dir_fd: int, name: str, size: int, superblock: bytes, req: ProvisionRequest, *,
    hugetlbfs: bool,
) -> mmap.mmap | None:
    """Create one region file; hugetlbfs files have no write(2), so they are always mapped."""
    fd = os.open(name, _FILE_FLAGS, req.permissions_mode, dir_fd=dir_fd)
    mapping: mmap.mmap | None = None
    try:
        _require_regular(fd, name)
        os.ftruncate(fd, size)
        os.fchmod(fd, req.permissions_mode)
        if req.prefault or req.mlock or hugetlbfs:
            os.posix_fallocate(fd, 0, size)
            mapping = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            if req.prefault:
                _zero_fill(mapping)
            if req.mlock:
                _mlock(mapping, name)
            mapping[: len(superblock)] = superblock
        else:
            os.pwrite(fd, superblock, 0)
        os.fsync(fd)
    except BaseException:
        if mapping is not None:
            mapping.close()
        raise
    finally:
        os.close(fd)
    if mapping is not None and not req.mlock:
        mapping.close()
        return None
    return mapping


def _require_regular(fd: int, name: str) -> None:
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        raise ProvisionError(f"{name} is not a regular file")


def _zero_fill(mapping: mmap.mmap) -> None:
    view = np.frombuffer(mapping, dtype=np.uint8)
    view.fill(0)
    del view  # the mapping cannot be closed while a numpy view exports it


def _mlock(mapping: mmap.mmap, name: str) -> None:
    anchor = ctypes.c_char.from_buffer(mapping)
    address = ctypes.addressof(anchor)
    del anchor
    if mlock_region(address, len(mapping)) != 0:
        err = ctypes.get_errno()
        raise ProvisionError(f"mlock of {name} failed: {os.strerror(err)}")


def mlock_region(address: int, length: int) -> int:
    """libc ``mlock`` (0 on success, -1 with errno); a seam tests replace to simulate failure."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return int(libc.mlock(ctypes.c_void_p(address), ctypes.c_size_t(length)))


def _check_space(sfd: int, needed: int, directory: Path) -> None:
    st = os.fstatvfs(sfd)
    available = st.f_bavail * st.f_frsize
    if available < needed:
        raise _OutOfSpaceError(f"insufficient space in {directory}: {needed} bytes needed, "
                               f"{available} available")


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _rename_noreplace(dir_fd: int, src: str, dst: str, directory: Path) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is not None:
        rc = renameat2(dir_fd, os.fsencode(src), dir_fd, os.fsencode(dst), _RENAME_NOREPLACE)
        if rc == 0:
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise ProvisionError(f"epoch directory {directory / dst} already exists")
        if err not in {errno.ENOSYS, errno.EINVAL}:
            raise OSError(err, os.strerror(err), str(directory / dst))
    if _exists(dir_fd, dst):
        raise ProvisionError(f"epoch directory {directory / dst} already exists")
    os.rename(src, dst, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def _as_error(exc: OSError, what: str) -> Exception:
    if exc.errno in _NO_SPACE:
        return _OutOfSpaceError(f"{what}: {exc.strerror}")
    return ProvisionError(f"{what}: {exc.strerror}")
