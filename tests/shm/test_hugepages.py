"""Hugetlbfs detection and huge page size (shm-layout.md §7, A-36)."""

from __future__ import annotations

from pathlib import Path

from shm import is_hugetlbfs
from shm.hugepages import _proc_mounts_type, _statfs_type, huge_page_size, round_up

TMPFS_MAGIC = 0x01021994


def test_tmp_path_is_not_hugetlbfs(tmp_path: Path) -> None:
    assert not is_hugetlbfs(tmp_path)


def test_statfs_reports_tmpfs_for_dev_shm() -> None:
    if Path("/dev/shm").is_dir() and _proc_mounts_type(Path("/dev/shm")) == "tmpfs":
        assert _statfs_type(Path("/dev/shm")) == TMPFS_MAGIC


def test_longest_mount_point_wins(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "rootfs / ext4 rw 0 0\n"
        "hugetlbfs /mnt/huge hugetlbfs rw,pagesize=2M 0 0\n"
        "tmpfs /mnt/huge/inner tmpfs rw 0 0\n"
        "tmpfs /mnt/hugely tmpfs rw 0 0\n"
    )
    assert _proc_mounts_type(Path("/mnt/huge/a/b"), mounts) == "hugetlbfs"
    assert _proc_mounts_type(Path("/mnt/huge"), mounts) == "hugetlbfs"
    assert _proc_mounts_type(Path("/mnt/huge/inner/x"), mounts) == "tmpfs"
    assert _proc_mounts_type(Path("/mnt/hugely/x"), mounts) == "tmpfs"
    assert _proc_mounts_type(Path("/etc"), mounts) == "ext4"


def test_huge_page_size_from_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 100 kB\nHugepagesize:       2048 kB\n")
    assert huge_page_size(meminfo) == 2 << 20
    meminfo.write_text("MemTotal: 100 kB\n")
    assert huge_page_size(meminfo) is None
    assert huge_page_size(tmp_path / "missing") is None


def test_round_up() -> None:
    assert round_up(64 + 8 * 256, 2 << 20) == 2 << 20
    assert round_up(2 << 20, 2 << 20) == 2 << 20
    assert round_up((2 << 20) + 1, 2 << 20) == 4 << 20
