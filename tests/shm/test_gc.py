"""Epoch garbage collection (driver-behaviour.md §9, A-9)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from shm import collect_epochs
from shm.superblock import encode_superblock, header_superblock

if TYPE_CHECKING:
    from pathlib import Path

NOW = 10**15


@pytest.fixture(scope="module")
def dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(proc.stdout)


def _epoch(sdir: Path, epoch: int, *, pid: int | None, activity: int = 1) -> Path:
    path = sdir / str(epoch)
    path.mkdir(parents=True)
    if pid is not None:
        sb = header_superblock(epoch=epoch, stream_id=1, nslots=8, pid=pid, now_ns=activity)
        (path / "header.ring").write_bytes(encode_superblock(sb) + bytes(8 * 256))
    return path


def _collect(sdir: Path, base: Path, **overrides: object) -> list[Path]:
    kwargs: dict[str, object] = {
        "current_epoch": 105,
        "referenced_epochs": (),
        "keep": 2,
        "min_age_ns": 0,
        "allowed_base_dirs": (base,),
        "now_monotonic_ns": NOW,
        "own_pid": os.getpid(),
        **overrides,
    }
    return collect_epochs(sdir, **kwargs)  # type: ignore[arg-type]


def _remaining(sdir: Path) -> list[str]:
    return sorted(p.name for p in sdir.iterdir())


def test_keeps_current_plus_keep_minus_one_newest(base: Path, dead_pid: int) -> None:
    sdir = base / "s"
    for epoch in range(100, 106):
        _epoch(sdir, epoch, pid=dead_pid)
    removed = _collect(sdir, base, keep=3)
    assert sorted(p.name for p in removed) == ["100", "101", "102"]
    assert _remaining(sdir) == ["103", "104", "105"]


def test_current_epoch_is_never_counted_or_removed(base: Path, dead_pid: int) -> None:
    sdir = base / "s"
    for epoch in (100, 101, 102):
        _epoch(sdir, epoch, pid=dead_pid)
    _collect(sdir, base, current_epoch=100, keep=1)
    assert _remaining(sdir) == ["100"]


def test_referenced_epochs_survive(base: Path, dead_pid: int) -> None:
    sdir = base / "s"
    for epoch in range(100, 106):
        _epoch(sdir, epoch, pid=dead_pid)
    _collect(sdir, base, keep=1, referenced_epochs={101})
    assert _remaining(sdir) == ["101", "105"]


def test_keep_zero_disables(base: Path, dead_pid: int) -> None:
    sdir = base / "s"
    for epoch in range(100, 106):
        _epoch(sdir, epoch, pid=dead_pid)
    assert _collect(sdir, base, keep=0) == []
    assert len(_remaining(sdir)) == 6


def test_age_comes_from_the_activity_timestamp(base: Path, dead_pid: int) -> None:
    sdir = base / "s"
    _epoch(sdir, 100, pid=dead_pid, activity=NOW - 999)
    _epoch(sdir, 101, pid=dead_pid, activity=NOW - 1000)
    _epoch(sdir, 105, pid=dead_pid)
    _collect(sdir, base, keep=1, min_age_ns=1000)
    assert _remaining(sdir) == ["100", "105"]


def test_without_a_superblock_age_comes_from_the_directory_mtime(base: Path) -> None:
    sdir = base / "s"
    young, old = _epoch(sdir, 100, pid=None), _epoch(sdir, 101, pid=None)
    _epoch(sdir, 105, pid=None)
    os.utime(young, ns=(NOW - 500, NOW - 500))
    os.utime(old, ns=(NOW - 5000, NOW - 5000))
    _collect(sdir, base, keep=1, min_age_ns=1000, now_realtime_ns=NOW)
    assert _remaining(sdir) == ["100", "105"]


def test_an_activity_stamp_from_before_this_boot_falls_back_to_the_mtime(
    base: Path, dead_pid: int
) -> None:
    """After a reboot the monotonic clock restarts below old superblocks' stamps."""
    sdir = base / "s"
    old = _epoch(sdir, 100, pid=dead_pid, activity=NOW + 10**15)
    _epoch(sdir, 105, pid=dead_pid)
    os.utime(old, ns=(NOW - 5000, NOW - 5000))
    _collect(sdir, base, keep=1, min_age_ns=1000, now_realtime_ns=NOW)
    assert _remaining(sdir) == ["105"]


def test_live_foreign_pid_protects_and_own_pid_does_not(base: Path) -> None:
    sdir = base / "s"
    _epoch(sdir, 100, pid=os.getppid())
    _epoch(sdir, 101, pid=os.getpid())
    _epoch(sdir, 105, pid=os.getpid())
    _collect(sdir, base, keep=1)
    assert _remaining(sdir) == ["100", "105"]


def test_a_symlinked_path_to_the_stream_still_reads_superblocks(
    base: Path, tmp_path: Path
) -> None:
    """A base_dir given through a symlink (e.g. /dev/shm -> /run/shm) keeps the pid rule."""
    sdir = base / "s"
    _epoch(sdir, 100, pid=os.getppid(), activity=NOW - 10)
    _epoch(sdir, 105, pid=os.getpid())
    link = tmp_path / "link"
    link.symlink_to(base)
    removed = _collect(link / "s", base, keep=1, min_age_ns=1000)
    assert removed == []
    assert _remaining(sdir) == ["100", "105"]
    assert _collect(link / "s", base, keep=1, min_age_ns=0, own_pid=os.getppid()) == [
        sdir / "100"
    ]


def test_epochs_outside_the_allowed_base_are_left_alone(
    base: Path, tmp_path: Path, dead_pid: int
) -> None:
    sdir = base / "s"
    for epoch in (100, 105):
        _epoch(sdir, epoch, pid=dead_pid)
    other = tmp_path / "other"
    other.mkdir()
    assert _collect(sdir, base, keep=1, allowed_base_dirs=(other,)) == []
    assert _remaining(sdir) == ["100", "105"]


def test_symlinks_and_non_epoch_names_are_ignored(
    base: Path, tmp_path: Path, dead_pid: int
) -> None:
    sdir = base / "s"
    _epoch(sdir, 105, pid=dead_pid)
    target = _epoch(tmp_path / "elsewhere", 100, pid=dead_pid)
    (sdir / "100").symlink_to(target)
    (sdir / "notes").mkdir()
    _collect(sdir, base, keep=1)
    assert _remaining(sdir) == ["100", "105", "notes"]
    assert target.is_dir()


def test_stale_build_directories_of_dead_creators_are_removed(base: Path, dead_pid: int) -> None:
    sdir = base / "s"
    _epoch(sdir, 105, pid=dead_pid)
    (sdir / f".build-{dead_pid}-106-abcd").mkdir()
    (sdir / f".build-{os.getppid()}-107-abcd").mkdir()
    (sdir / f".build-{os.getpid()}-108-abcd").mkdir()
    removed = _collect(sdir, base, keep=2)
    assert [p.name for p in removed] == [f".build-{dead_pid}-106-abcd"]
    assert _remaining(sdir) == sorted(
        ["105", f".build-{os.getppid()}-107-abcd", f".build-{os.getpid()}-108-abcd"]
    )


def test_missing_stream_directory_is_not_an_error(base: Path) -> None:
    assert _collect(base / "missing", base) == []
