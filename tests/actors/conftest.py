"""Fixtures shared by the actor-system tests that hold a stream in the middle of provisioning."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.actors.harness import BlockingProvisioner, Harness

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def prov() -> BlockingProvisioner:
    return BlockingProvisioner()


@pytest.fixture
def blocked_h(tmp_path: Path, prov: BlockingProvisioner) -> Iterator[Harness]:
    """The actor tree with ``prov`` as its provisioner; released and stopped at the end."""
    harness = Harness(tmp_path)
    harness.start(provisioner=prov)
    try:
        yield harness
    finally:
        prov.release.set()
        assert harness.system is not None
        harness.system.stop()
