"""What a mapper checks before trusting a region file, in the order of shm-layout.md §8.

``open_region`` is for producers and consumers (and tests): every refusal is a
``RegionValidationError`` whose ``check`` names the failed step, so a client can log it and
fall back or retry on the next announce.
"""

from __future__ import annotations

import mmap
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol, Self

from shm.errors import PathError, RegionValidationError, UriError
from shm.hugepages import is_hugetlbfs
from shm.ring import HeaderRing, PayloadPoolView
from shm.safe_fs import open_file_nofollow, require_within
from shm.superblock import (
    HEADER_SLOT_BYTES,
    LAYOUT_VERSION,
    MAGIC,
    POOL_SLOT_BYTES_C_DRIVER,
    SUPERBLOCK_SIZE,
    RegionType,
    Superblock,
    decode_superblock,
    header_region_size,
    is_power_of_two,
    pool_region_size,
    write_activity,
)
from shm.uri import parse_region_uri

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

ANY_UID: Final = -1
"""``ExpectedRegion.expected_uid`` value that skips the owner check (shared group setups)."""
DEFAULT_ANNOUNCE_PERIOD_NS: Final = 1_000_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpectedRegion:
    """What the announce or attach response said the region is.

    ``expected_uid`` None means our effective uid; ``activity_window_ns`` None skips the
    freshness check (the default is 3 x the default announce period).
    """

    region_type: RegionType
    stream_id: int
    epoch: int
    nslots: int
    pool_id: int = 0
    stride_bytes: int = 0
    layout_version: int = LAYOUT_VERSION
    expected_uid: int | None = None
    activity_window_ns: int | None = 3 * DEFAULT_ANNOUNCE_PERIOD_NS

    @property
    def size(self) -> int:
        """Minimum file size: the region size from the announced geometry."""
        if self.region_type == RegionType.HEADER_RING:
            return header_region_size(self.nslots)
        return pool_region_size(self.nslots, self.stride_bytes)


class MappedRegion:
    """A validated, mapped region; ``close()`` releases the views it handed out, then unmaps."""

    def __init__(self, *, path: Path, uri: str, mapping: mmap.mmap, superblock: Superblock,
                 expected: ExpectedRegion) -> None:
        self.path = path
        self.uri = uri
        self.mmap = mapping
        self.superblock = superblock
        self.expected = expected
        self._views: list[HeaderRing | PayloadPoolView] = []

    @property
    def pid(self) -> int:
        """The driver pid recorded at mapping time (a later change means remap)."""
        return self.superblock.pid

    def identity_changed(self) -> bool:
        """Whether the superblock now names another pid or epoch than when it was mapped.

        shm-layout.md 8 step 8: a driver that re-provisioned this very file in place (a
        restarted driver reusing an epoch number) leaves the mapping looking valid while
        its contents belong to someone else, so the reader must remap.
        """
        if self.mmap.closed:
            return True
        now = decode_superblock(self.mmap[:SUPERBLOCK_SIZE])
        return (now.pid, now.epoch) != (self.superblock.pid, self.superblock.epoch)

    def header_ring(self) -> HeaderRing:
        """A HeaderRing over this region (released by ``close()``)."""
        if self.expected.region_type != RegionType.HEADER_RING:
            raise ValueError("not a header ring region")
        ring = HeaderRing(self.mmap, nslots=self.expected.nslots)
        self._views.append(ring)
        return ring

    def payload_pool(self) -> PayloadPoolView:
        """A PayloadPoolView over this region (released by ``close()``)."""
        if self.expected.region_type != RegionType.PAYLOAD_POOL:
            raise ValueError("not a payload pool region")
        pool = PayloadPoolView(self.mmap, pool_id=self.expected.pool_id,
                               nslots=self.expected.nslots,
                               stride_bytes=self.expected.stride_bytes)
        self._views.append(pool)
        return pool

    def touch_activity(self, now_ns: int) -> None:
        """Refresh activityTimestampNs (producers do this every announce period)."""
        with memoryview(self.mmap) as view:
            write_activity(view, now_ns)

    def close(self) -> None:
        """Release every view, then unmap (idempotent)."""
        for view in self._views:
            view.release()
        self._views.clear()
        if not self.mmap.closed:
            self.mmap.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class AnnouncedPool(Protocol):
    """A ``payloadPools`` entry of an attach response or announce (``messages.PayloadPool``)."""

    @property
    def pool_id(self) -> int: ...
    @property
    def pool_nslots(self) -> int: ...
    @property
    def stride_bytes(self) -> int: ...
    @property
    def region_uri(self) -> str: ...


def announced_regions(
    *,
    stream_id: int,
    epoch: int,
    header_nslots: int,
    header_uri: str,
    pools: Iterable[AnnouncedPool],
    layout_version: int = LAYOUT_VERSION,
    activity_window_ns: int | None = 3 * DEFAULT_ANNOUNCE_PERIOD_NS,
) -> list[tuple[str, ExpectedRegion]]:
    """The regions an attach response or announce names, header ring first then ``pools`` in
    the given order, each with what its superblock and size must say (shm-layout.md §8)."""
    header = ExpectedRegion(
        region_type=RegionType.HEADER_RING,
        stream_id=stream_id,
        epoch=epoch,
        nslots=header_nslots,
        layout_version=layout_version,
        activity_window_ns=activity_window_ns,
    )
    regions = [(header_uri, header)]
    regions += [
        (
            pool.region_uri,
            ExpectedRegion(
                region_type=RegionType.PAYLOAD_POOL,
                stream_id=stream_id,
                epoch=epoch,
                nslots=pool.pool_nslots,
                pool_id=pool.pool_id,
                stride_bytes=pool.stride_bytes,
                layout_version=layout_version,
                activity_window_ns=activity_window_ns,
            ),
        )
        for pool in pools
    ]
    return regions


def open_region(
    uri: str, expected: ExpectedRegion, *, allowed_base_dirs: tuple[Path, ...],
    writable: bool = False, now_ns: int | None = None,
) -> MappedRegion:
    """Validate the file named by ``uri`` and map it (read-only unless ``writable``)."""
    try:
        parsed = parse_region_uri(uri)
    except UriError as exc:
        raise RegionValidationError("uri", str(exc)) from exc
    path = Path(parsed.path)
    try:
        canonical = require_within(path, allowed_base_dirs)
    except PathError as exc:
        raise RegionValidationError("containment", str(exc)) from exc
    try:
        canonical_st = canonical.stat()
    except OSError as exc:
        raise RegionValidationError("regular_file", f"{canonical}: {exc.strerror}") from exc
    if not stat.S_ISREG(canonical_st.st_mode):
        raise RegionValidationError("regular_file", f"{canonical} is not a regular file")
    flags = (os.O_RDWR if writable else os.O_RDONLY) | os.O_NONBLOCK
    try:
        fd = open_file_nofollow(path, flags)
    except PathError as exc:
        raise RegionValidationError("symlink", str(exc)) from exc
    except OSError as exc:
        raise RegionValidationError("open", f"{path}: {exc.strerror}") from exc
    try:
        st = os.fstat(fd)
        _check_file(st, canonical_st, canonical, parsed.require_hugepages, expected)
        mapping = mmap.mmap(fd, st.st_size, mmap.MAP_SHARED,
                            mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0))
    except OSError as exc:
        raise RegionValidationError("map", f"{path}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    try:
        superblock = decode_superblock(mapping[:SUPERBLOCK_SIZE])
        _check_superblock(superblock, expected,
                          time.monotonic_ns() if now_ns is None else now_ns)
    except BaseException:
        mapping.close()
        raise
    return MappedRegion(path=path, uri=uri, mapping=mapping, superblock=superblock,
                        expected=expected)


def _check_file(st: os.stat_result, canonical_st: os.stat_result, canonical: Path,
                require_hugepages: bool, expected: ExpectedRegion) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise RegionValidationError("regular_file", "opened file is not a regular file")
    if (st.st_dev, st.st_ino) != (canonical_st.st_dev, canonical_st.st_ino):
        raise RegionValidationError("identity", "opened file is not the canonical path's file")
    if require_hugepages and not is_hugetlbfs(canonical):
        raise RegionValidationError("hugepages", f"{canonical} is not on hugetlbfs")
    uid = os.geteuid() if expected.expected_uid is None else expected.expected_uid
    if uid not in {ANY_UID, st.st_uid}:
        raise RegionValidationError("owner", f"file owned by uid {st.st_uid}, expected {uid}")
    if st.st_mode & stat.S_IWOTH:
        raise RegionValidationError("permissions", f"file mode {st.st_mode & 0o7777:o} is "
                                    "world-writable")
    if st.st_size < SUPERBLOCK_SIZE or st.st_size < expected.size:
        raise RegionValidationError("size", f"file has {st.st_size} bytes, expected at least "
                                    f"{max(expected.size, SUPERBLOCK_SIZE)}")


def _check_superblock(sb: Superblock, expected: ExpectedRegion, now_ns: int) -> None:
    is_ring = expected.region_type == RegionType.HEADER_RING
    slot_ok = (sb.slot_bytes == HEADER_SLOT_BYTES if is_ring
               else sb.slot_bytes in {expected.stride_bytes, POOL_SLOT_BYTES_C_DRIVER})
    checks = (
        ("magic", sb.magic == MAGIC, f"{sb.magic:#x}"),
        ("layout_version", sb.layout_version == expected.layout_version,
         str(sb.layout_version)),
        ("epoch", sb.epoch == expected.epoch, str(sb.epoch)),
        ("stream_id", sb.stream_id == expected.stream_id, str(sb.stream_id)),
        ("region_type", sb.region_type == expected.region_type, str(sb.region_type)),
        ("pool_id", sb.pool_id == (0 if is_ring else expected.pool_id), str(sb.pool_id)),
        ("nslots", sb.nslots == expected.nslots and is_power_of_two(sb.nslots),
         str(sb.nslots)),
        ("slot_bytes", slot_ok, str(sb.slot_bytes)),
        ("stride_bytes", is_ring or 0 < sb.stride_bytes == expected.stride_bytes,
         str(sb.stride_bytes)),
        ("activity", sb.activity_timestamp_ns != 0, "activity timestamp is 0"),
    )
    for name, ok, got in checks:
        if not ok:
            raise RegionValidationError(name, f"unexpected value {got}")
    window = expected.activity_window_ns
    if window is not None and now_ns - sb.activity_timestamp_ns > window:
        age_ms = (now_ns - sb.activity_timestamp_ns) // 1_000_000
        raise RegionValidationError("activity", f"activity timestamp is {age_ms} ms old")
