"""Is a path on hugetlbfs, and how big is a huge page (shm-layout.md §7, A-36)?

``os.statvfs`` has no ``f_type``, so the filesystem magic comes from libc ``statfs`` through
ctypes; when that is unavailable the longest matching mount point of /proc/mounts decides.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path
from typing import Final

HUGETLBFS_MAGIC: Final = 0x958458F6
_STATFS_BUF_BYTES: Final = 256  # struct statfs is 120 bytes on x86-64/aarch64; keep slack


def _statfs_type(path: Path) -> int | None:
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    libc = ctypes.CDLL(libc_name, use_errno=True)
    buf = ctypes.create_string_buffer(_STATFS_BUF_BYTES)
    if libc.statfs(os.fsencode(path), buf) != 0:
        return None
    # f_type is the first member (a long / __fsword_t) of struct statfs on Linux.
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF


def _proc_mounts_type(path: Path, mounts_file: Path = Path("/proc/mounts")) -> str | None:
    try:
        lines = mounts_file.read_text().splitlines()
    except OSError:
        return None
    real = os.path.realpath(path)
    best, best_type = "", None
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point = fields[1].replace("\\040", " ")
        inside = real == mount_point or real.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, fields[2]
    return best_type


def is_hugetlbfs(path: Path) -> bool:
    """True when ``path`` (an existing file or directory) lives on a hugetlbfs mount."""
    fs_type = _statfs_type(path)
    if fs_type is not None:
        return fs_type == HUGETLBFS_MAGIC
    return _proc_mounts_type(path) == "hugetlbfs"


def huge_page_size(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """The default huge page size in bytes (``Hugepagesize:``), None when unknown."""
    try:
        text = meminfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("Hugepagesize:"):
            fields = line.split()
            unit = 1024 if len(fields) > 2 and fields[2].lower() == "kb" else 1
            return int(fields[1]) * unit
    return None


def round_up(size: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= ``size``."""
    return -(-size // multiple) * multiple
