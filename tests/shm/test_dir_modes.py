"""Every directory the driver makes has the mode ``file mode | 0o110`` (§5.1 step 3, A-30).

The namespace directories are normally made by the instance lock at start-up and the stream
and epoch directories by provisioning: the two must agree.
"""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING

import pytest

from shm import directory_mode, provision_epoch, stream_dir
from shm.instance_lock import InstanceLock
from shm.paths import namespace_dir

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from shm import ProvisionRequest


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    ("file_mode", "dir_mode"),
    [(0o660, 0o770), (0o640, 0o750), (0o644, 0o754), (0o600, 0o710), (0o666, 0o776)],
)
def test_directory_mode_adds_owner_and_group_execute(file_mode: int, dir_mode: int) -> None:
    assert directory_mode(file_mode) == dir_mode


@pytest.mark.parametrize("file_mode", [0o644, 0o600])
def test_lock_made_and_provisioned_directories_share_one_mode(
    request_for: Callable[..., ProvisionRequest], base: Path, file_mode: int
) -> None:
    ns = namespace_dir(base, "default")
    with InstanceLock(ns, directory_mode(file_mode), owned_below=base):
        epoch = provision_epoch(request_for(permissions_mode=file_mode))
        sdir = stream_dir(base, "default", 10000)
        assert sdir.parent == ns
        made = {
            "user": _mode(ns.parent),
            "namespace": _mode(ns),
            "stream": _mode(sdir),
            "epoch": _mode(epoch.directory),
        }
    assert made == dict.fromkeys(made, file_mode | 0o110)
