"""Fixtures: an embedded Aeron media driver per test, the fake driver peer, started clients."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pyaeron
import pytest

from messages import (
    ResponseCode,
    SbeMessage,
    ShmAttachRequest,
    ShmDetachRequest,
    ShmDetachResponse,
)
from tensorpool_client import Consumer, DriverClient, Producer
from tests.client.fakes import FakeDriver, ok_response, provision

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from shm import ProvisionedEpoch

STREAM = 10000


def wait_connected(producer: Producer, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not producer.descriptor_connected():
        assert time.monotonic() < deadline, "descriptor subscriber never connected"


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


@pytest.fixture
def base(tmp_path: Path) -> Path:
    path = tmp_path / "shm"
    path.mkdir()
    return path


@pytest.fixture
def epoch1(base: Path) -> ProvisionedEpoch:
    return provision(base, STREAM, 1000)


@pytest.fixture
def granting(fake_driver: FakeDriver, epoch1: ProvisionedEpoch) -> FakeDriver:
    def respond(msg: SbeMessage) -> list[SbeMessage | bytes]:
        if isinstance(msg, ShmAttachRequest):
            return [ok_response(msg, epoch1)]
        if isinstance(msg, ShmDetachRequest):
            return [ShmDetachResponse(correlation_id=msg.correlation_id, code=ResponseCode.OK)]
        return []

    fake_driver.responder = respond
    return fake_driver


@pytest.fixture
def producer(granting: FakeDriver, make_client: Callable[..., DriverClient],
             base: Path) -> Iterator[Producer]:
    with Producer(make_client(), STREAM, allowed_base_dirs=(base,),
                  activity_period_ms=50) as prod:
        yield prod


@pytest.fixture
def consumer(granting: FakeDriver, make_client: Callable[..., DriverClient],
             base: Path) -> Iterator[Consumer]:
    with Consumer(make_client(), STREAM, allowed_base_dirs=(base,)) as cons:
        yield cons
