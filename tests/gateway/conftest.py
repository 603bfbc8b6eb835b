"""Fixtures for gateway tests: an embedded media driver, raw pyaeron peers, a recording actor."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import pyaeron
import pykka
import pytest

from actors.gateway.control import ControlGateway, GatewayChannels
from messages.events import IntakeCaughtUp, Keepalives
from tensorpool_client.aeron_connect import connect

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

CONTROL = "aeron:ipc?term-length=64k"
CONTROL_STREAM = 3000
ANNOUNCE_STREAM = 3001
QOS_STREAM = 3200


def channels(*, shared_announce: bool = False) -> GatewayChannels:
    return GatewayChannels(
        control_channel=CONTROL,
        control_stream_id=CONTROL_STREAM,
        announce_channel=CONTROL,
        announce_stream_id=CONTROL_STREAM if shared_announce else ANNOUNCE_STREAM,
        qos_channel=CONTROL,
        qos_stream_id=QOS_STREAM,
    )


class Recorder(pykka.ThreadingActor):
    """Stub DriverActor: records what the gateway tells it, intake horizons apart."""

    def __init__(self, recording: Recording) -> None:
        super().__init__()
        self._rec = recording

    def on_receive(self, message: Any) -> None:
        rec = self._rec
        with rec.cond:
            if isinstance(message, IntakeCaughtUp):
                rec.intake.append((message, len(rec.messages)))
            else:
                rec.told.append(message)
                # The requests one by one: a poll's keepalives come as one Keepalives.
                rec.messages.extend(message.batch if isinstance(message, Keepalives) else [message])
            rec.cond.notify_all()


class Recording:
    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.told: list[Any] = []  # as told, Keepalives batches whole
        # Each IntakeCaughtUp with how many requests had been told before it.
        self.intake: list[tuple[IntakeCaughtUp, int]] = []
        self.cond = threading.Condition()
        self.ref = Recorder.start(self)

    def wait_for(self, predicate: Callable[[list[Any]], bool], timeout: float = 5.0) -> list[Any]:
        with self.cond:
            ok = self.cond.wait_for(lambda: predicate(self.messages), timeout)
            assert ok, f"timed out; got {self.messages!r}"
            return list(self.messages)


class Peer:
    """A raw Aeron client on the gateway's streams, as a real client would be."""

    def __init__(self, aeron_dir: str, ch: GatewayChannels, *, announce_sub: bool = True) -> None:
        self.aeron = connect(aeron_dir, client_name="peer")
        self.control_sub = self.aeron.add_subscription(ch.control_channel, ch.control_stream_id)
        self.announce_sub = None
        if announce_sub and not ch.announce_shares_control:
            self.announce_sub = self.aeron.add_subscription(
                ch.announce_channel, ch.announce_stream_id
            )
        self.pub = self.aeron.add_exclusive_publication(ch.control_channel, ch.control_stream_id)
        self.control: list[bytes] = []
        self.announces: list[bytes] = []
        self.idle = pyaeron.IdleStrategy.backoff(max_park_ns=100_000)

    def send(self, data: bytes, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.pub.offer(data) is not True:
            assert time.monotonic() < deadline, "peer offer timed out"
            self.idle.idle(self.poll())  # our own subscription must not hold us back

    def poll(self) -> int:
        work = self.control_sub.poll(lambda b, _h: self.control.append(bytes(b)), 100)
        if self.announce_sub is not None:
            work += self.announce_sub.poll(lambda b, _h: self.announces.append(bytes(b)), 100)
        return int(work)

    def poll_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "peer timed out waiting"
            self.idle.idle(self.poll())

    def close(self) -> None:
        self.aeron.close()


@pytest.fixture
def media_driver(tmp_path: Path) -> Iterator[str]:
    aeron_dir = str(tmp_path / "aeron")
    driver = pyaeron.MediaDriver(dir=aeron_dir, dir_delete_on_start=False)
    try:
        yield aeron_dir
    finally:
        driver.close()


@pytest.fixture
def recording() -> Iterator[Recording]:
    rec = Recording()
    try:
        yield rec
    finally:
        pykka.ActorRegistry.stop_all()


@pytest.fixture
def make_gateway(media_driver: str) -> Iterator[Callable[..., ControlGateway]]:
    made: list[ControlGateway] = []

    def make(*, shared_announce: bool = False, **kwargs: Any) -> ControlGateway:
        gw = ControlGateway(media_driver, channels(shared_announce=shared_announce), **kwargs)
        made.append(gw)
        gw.start()
        return gw

    try:
        yield make
    finally:
        for gw in made:
            gw.close(flush_timeout=0.5)
            gw.clock.close()


@pytest.fixture
def make_peer(media_driver: str) -> Iterator[Callable[..., Peer]]:
    made: list[Peer] = []

    def make(*, shared_announce: bool = False, announce_sub: bool = True) -> Peer:
        peer = Peer(
            media_driver, channels(shared_announce=shared_announce), announce_sub=announce_sub
        )
        made.append(peer)
        return peer

    try:
        yield make
    finally:
        for peer in made:
            peer.close()
