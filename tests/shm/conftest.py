"""Fixtures for shm tests: a canonical base dir under tmp_path and a provisioning request."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from shm import ProvisionRequest

if TYPE_CHECKING:
    from collections.abc import Callable


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A canonical (symlink-free) base directory that is also the only allowed base."""
    directory = Path(os.path.realpath(tmp_path)) / "base"
    directory.mkdir()
    return directory


@pytest.fixture
def request_for(base: Path) -> Callable[..., ProvisionRequest]:
    """Build a ProvisionRequest for ``base`` with small defaults, overridable per test."""

    def make(**overrides: object) -> ProvisionRequest:
        req = ProvisionRequest(
            base_dir=base,
            namespace="default",
            allowed_base_dirs=(base,),
            stream_id=10000,
            epoch=1700000000123,
            header_nslots=8,
            pools=((1, 1024), (2, 4096)),
            permissions_mode=0o660,
            prefault=True,
            mlock=False,
            hugepages=False,
            pid=os.getpid(),
            now_ns=time.monotonic_ns(),
        )
        return replace(req, **overrides)  # type: ignore[arg-type]  # test overrides any field

    return make
