"""Provisioning an epoch (shm-layout.md §5.1, driver-behaviour.md §4, A-10, A-18, A-30)."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from shm import (
    HugepagesUnavailable,
    PathError,
    ProvisionError,
    ProvisionRequest,
    RegionType,
    next_epoch,
    parse_region_uri,
    provision_epoch,
    stream_dir,
)
from shm import provision as provision_module
from shm.superblock import MAGIC, Superblock, decode_superblock

RequestFor = Callable[..., ProvisionRequest]


def _superblock(uri: str) -> Superblock:
    with Path(parse_region_uri(uri).path).open("rb") as f:
        return decode_superblock(f.read(64))


def test_creates_header_ring_and_pools_with_exact_sizes_modes_and_superblocks(
    request_for: RequestFor, base: Path
) -> None:
    req = request_for(permissions_mode=0o640)
    epoch = provision_epoch(req)
    sdir = stream_dir(base, "default", 10000)
    assert epoch.directory == sdir / "1700000000123"
    assert epoch.header_uri == f"shm:file?path={epoch.directory}/header.ring"
    assert [(p.pool_id, p.stride_bytes, p.nslots) for p in epoch.pools] == [
        (1, 1024, 8),
        (2, 4096, 8),
    ]
    assert epoch.pools[1].uri == f"shm:file?path={epoch.directory}/2.pool"
    ring = epoch.directory / "header.ring"
    assert ring.stat().st_size == 64 + 8 * 256
    assert (epoch.directory / "1.pool").stat().st_size == 64 + 8 * 1024
    assert (epoch.directory / "2.pool").stat().st_size == 64 + 8 * 4096
    for path in (ring, epoch.directory / "1.pool", epoch.directory / "2.pool"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    for directory in (epoch.directory, sdir, sdir.parent, sdir.parent.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o750
    sb = _superblock(epoch.header_uri)
    assert (sb.magic, sb.layout_version, sb.epoch, sb.stream_id) == (MAGIC, 1, 1700000000123, 10000)
    assert (sb.region_type, sb.pool_id, sb.nslots, sb.slot_bytes, sb.stride_bytes) == (
        RegionType.HEADER_RING,
        0,
        8,
        256,
        0,
    )
    assert (sb.pid, sb.start_timestamp_ns, sb.activity_timestamp_ns) == (
        req.pid,
        req.now_ns,
        req.now_ns,
    )
    pool = _superblock(epoch.pools[1].uri)
    assert (pool.region_type, pool.pool_id, pool.nslots, pool.slot_bytes, pool.stride_bytes) == (
        RegionType.PAYLOAD_POOL,
        2,
        8,
        4096,
        4096,
    )
    assert ring.read_bytes()[64:] == bytes(8 * 256)  # every seqCommit starts at 0


def test_explicit_chmod_ignores_the_umask(request_for: RequestFor) -> None:
    old = os.umask(0o077)
    try:
        epoch = provision_epoch(request_for(permissions_mode=0o660))
    finally:
        os.umask(old)
    assert stat.S_IMODE((epoch.directory / "header.ring").stat().st_mode) == 0o660
    assert stat.S_IMODE(epoch.directory.stat().st_mode) == 0o770


def test_no_build_directory_is_left_behind(request_for: RequestFor, base: Path) -> None:
    provision_epoch(request_for(prefault=False))
    names = [p.name for p in stream_dir(base, "default", 10000).iterdir()]
    assert names == ["1700000000123"]


def test_failure_leaves_nothing_visible(
    request_for: RequestFor, base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail_mlock(_address: int, _length: int) -> int:
        return -1

    monkeypatch.setattr(provision_module, "mlock_region", fail_mlock)
    with pytest.raises(ProvisionError, match="mlock of"):
        provision_epoch(request_for(mlock=True))
    assert [p.name for p in stream_dir(base, "default", 10000).iterdir()] == []


@pytest.mark.parametrize("name", ["with space", "pipe|dir", "query?dir"])
def test_a_base_dir_no_uri_can_carry_fails_before_anything_is_created(
    request_for: RequestFor, base: Path, name: str
) -> None:
    """shm-layout.md §6: the URI is formed first, so no unannounceable epoch is left behind."""
    bad = base / name
    bad.mkdir()
    with pytest.raises(ProvisionError, match=r"cannot form region URIs: .*contains"):
        provision_epoch(request_for(base_dir=bad, allowed_base_dirs=(bad,)))
    assert list(bad.iterdir()) == []


def test_mlock_keeps_the_mappings_until_released(request_for: RequestFor) -> None:
    epoch = provision_epoch(request_for(mlock=True))
    assert len(epoch.locked_maps) == 3
    epoch.release()
    assert all(m.closed for m in epoch.locked_maps)


def test_existing_epoch_is_never_reused(request_for: RequestFor) -> None:
    provision_epoch(request_for())
    with pytest.raises(ProvisionError, match="already exists"):
        provision_epoch(request_for())


def test_outside_allowed_base_is_a_path_error(request_for: RequestFor, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(PathError, match="outside"):
        provision_epoch(request_for(allowed_base_dirs=(other,)))


def test_symlinked_component_below_the_base_is_refused(
    request_for: RequestFor, base: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    user_dir = stream_dir(base, "default", 1).parent.parent
    user_dir.symlink_to(elsewhere)
    with pytest.raises(PathError, match="symlink"):
        provision_epoch(request_for())
    assert not any(elsewhere.iterdir())


def test_a_user_dir_made_world_writable_by_someone_is_refused(
    request_for: RequestFor, base: Path
) -> None:
    user_dir = stream_dir(base, "default", 1).parent.parent
    user_dir.mkdir()
    user_dir.chmod(0o777)  # e.g. planted in a shared /dev/shm before the driver's first start
    with pytest.raises(PathError, match="world-writable"):
        provision_epoch(request_for())
    assert not any(user_dir.iterdir())


def test_a_world_writable_mode_that_is_configured_is_honoured(request_for: RequestFor) -> None:
    provision_epoch(request_for(permissions_mode=0o666))  # dirs 0776, as the operator asked


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory to another uid")
def test_a_user_dir_owned_by_another_uid_is_refused(request_for: RequestFor, base: Path) -> None:
    user_dir = stream_dir(base, "default", 1).parent.parent
    user_dir.mkdir(mode=0o770)
    os.chown(user_dir, 54321, 54321)
    with pytest.raises(PathError, match="belongs to uid 54321"):
        provision_epoch(request_for())
    assert not any(user_dir.iterdir())


def test_bad_namespace_is_a_path_error(request_for: RequestFor) -> None:
    with pytest.raises(PathError, match="namespace"):
        provision_epoch(request_for(namespace="../x"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"header_nslots": 6}, "power of two"),
        ({"pools": ((1, 96),)}, "stride"),
        ({"pools": ((1, 64), (1, 128))}, "unique"),
        ({"pools": ((0, 64),)}, "unique"),
        ({"epoch": 0}, "epoch"),
        ({"permissions_mode": 0o1777}, "mode"),
        ({"now_ns": 0}, "now_ns"),
    ],
)
def test_invalid_requests_are_refused(
    request_for: RequestFor, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ProvisionError, match=message):
        provision_epoch(request_for(**overrides))


def test_required_hugepages_without_hugetlbfs_fail_clearly(
    request_for: RequestFor, base: Path
) -> None:
    with pytest.raises(HugepagesUnavailable, match="hugepages not available"):
        provision_epoch(request_for(hugepages=True))
    assert not stream_dir(base, "default", 10000).exists()


def test_hugetlbfs_base_rounds_sizes_and_marks_uris(
    request_for: RequestFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provision_module, "is_hugetlbfs", lambda _path: True)
    monkeypatch.setattr(provision_module, "huge_page_size", lambda: 1 << 16)
    epoch = provision_epoch(request_for(hugepages=True, pools=((1, 1024), (3, 8192))))
    assert epoch.header_uri.endswith("/header.ring|require_hugepages=true")
    assert all(p.uri.endswith("|require_hugepages=true") for p in epoch.pools)
    assert (epoch.directory / "header.ring").stat().st_size == 1 << 16
    assert (epoch.directory / "1.pool").stat().st_size == 1 << 16
    assert (epoch.directory / "3.pool").stat().st_size == 2 << 16  # 64 + 8 * 8192 rounded up


@pytest.mark.parametrize("prefault", [True, False])
def test_hugetlbfs_regions_are_initialised_through_the_mapping(
    request_for: RequestFor, monkeypatch: pytest.MonkeyPatch, prefault: bool
) -> None:
    """hugetlbfs files have no write(2) (EINVAL): the superblock must go through the mapping."""

    def no_write(*_args: object) -> int:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    monkeypatch.setattr(provision_module, "is_hugetlbfs", lambda _path: True)
    monkeypatch.setattr(provision_module, "huge_page_size", lambda: 1 << 16)
    monkeypatch.setattr(os, "pwrite", no_write)
    req = request_for(hugepages=True, prefault=prefault)
    epoch = provision_epoch(req)
    ring = _superblock(epoch.header_uri)
    assert (ring.magic, ring.epoch, ring.region_type, ring.nslots, ring.slot_bytes) == (
        MAGIC, req.epoch, RegionType.HEADER_RING, 8, 256
    )
    pool = _superblock(epoch.pools[1].uri)
    assert (pool.magic, pool.pool_id, pool.stride_bytes) == (MAGIC, 2, 4096)


def test_lack_of_space_runs_reclaim_once_then_retries(
    request_for: RequestFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = provision_module._check_space

    def check(sfd: int, needed: int, directory: Path) -> None:
        calls.append(needed)
        if len(calls) == 1:
            real(sfd, 1 << 62, directory)  # certainly short of space
        real(sfd, needed, directory)

    reclaimed: list[bool] = []
    monkeypatch.setattr(provision_module, "_check_space", check)
    epoch = provision_epoch(request_for(), reclaim_space=lambda: reclaimed.append(True))
    assert reclaimed == [True]
    assert len(calls) == 2
    assert epoch.directory.is_dir()


def test_enospc_twice_is_a_provision_error_and_leaves_nothing(
    request_for: RequestFor, base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(_fd: int, _offset: int, _length: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    reclaimed: list[bool] = []
    with pytest.raises(ProvisionError, match="No space left"):
        provision_epoch(request_for(), reclaim_space=lambda: reclaimed.append(True))
    assert reclaimed == [True]
    assert [p.name for p in stream_dir(base, "default", 10000).iterdir()] == []


def test_next_epoch_is_above_previous_now_and_disk(base: Path) -> None:
    sdir = base / "s"
    assert next_epoch(sdir, 5, 3) == 6
    assert next_epoch(sdir, 5, 100) == 100
    sdir.mkdir()
    (sdir / "1000").mkdir()
    (sdir / ".build-1-2000-ab").mkdir()
    (sdir / "3000").write_text("not a directory")
    assert next_epoch(sdir, 5, 100) == 1001


def test_next_epoch_ignores_names_that_are_not_unpadded_uint64s(base: Path) -> None:
    sdir = base / "s"
    sdir.mkdir()
    (sdir / "1000").mkdir()
    (sdir / str(2**64)).mkdir()  # would make every later epoch overflow the uint64 field
    (sdir / "0002000").mkdir()  # padded: not a name epoch_dir writes
    assert next_epoch(sdir, 5, 100) == 1001
