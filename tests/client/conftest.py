"""Fixtures: an embedded Aeron media driver per test, the fake driver peer, started clients."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyaeron
import pytest

from tensorpool_client import DriverClient
from tests.client.fakes import FakeDriver

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


@pytest.fixture
def aeron_dir(tmp_path: Path) -> Iterator[str]:
    driver = pyaeron.MediaDriver(dir=str(tmp_path / "aeron"), dir_delete_on_start=False)
    try:
        yield str(driver.dir)
    finally:
        driver.close()


@pytest.fixture
def fake_driver(aeron_dir: str) -> Iterator[FakeDriver]:
    peer = FakeDriver(aeron_dir)
    peer.start()
    try:
        yield peer
    finally:
        peer.close()


@pytest.fixture
def make_client(aeron_dir: str) -> Iterator[Callable[..., DriverClient]]:
    clients: list[DriverClient] = []

    def make(**kwargs: Any) -> DriverClient:
        client = DriverClient(aeron_dir, **kwargs).start()
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in clients:
            client.close()
