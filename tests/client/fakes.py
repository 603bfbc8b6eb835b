"""A scripted fake driver peer and helpers to build its answers and provision regions.

The fake peer is a thread with its own Aeron client on the control stream: it decodes every
request, records it, and answers with whatever the test's ``responder`` returns. The real
driver is not involved, so these tests pin the client to the spec alone.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pyaeron

import messages
from messages import (
    ClockDomain,
    PayloadPool,
    ResponseCode,
    SbeMessage,
    ShmAttachRequest,
    ShmAttachResponse,
    ShmPoolAnnounce,
)
from shm import ProvisionedEpoch, ProvisionRequest, provision_epoch
from tensorpool_client.aeron_connect import connect

if TYPE_CHECKING:
    from pathlib import Path

CHANNEL = "aeron:ipc?term-length=4m"
CONTROL, ANNOUNCE = 1000, 1001

Responder = Callable[[SbeMessage], list[SbeMessage | bytes]]


class FakeDriver:
    """A driver stand-in: records requests, answers through ``responder`` (set by the test)."""

    def __init__(self, aeron_dir: str) -> None:
        self.aeron_dir = aeron_dir
        self.responder: Responder = lambda _msg: []
        self.received: list[SbeMessage] = []
        self.raw: list[bytes] = []
        self.cond = threading.Condition()
        self._outbox: collections.deque[tuple[int, bytes]] = collections.deque()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-driver", daemon=True)

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(10)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def send(self, msg: SbeMessage | bytes, *, announce: bool = False) -> None:
        """Queue a message for the control (or announce) publication."""
        data = msg if isinstance(msg, bytes) else messages.encode(msg)
        self._outbox.append((ANNOUNCE if announce else CONTROL, data))

    def wait_for(self, predicate: Callable[[list[SbeMessage]], bool], timeout: float = 5.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: predicate(self.received), timeout)

    def of_type[M: SbeMessage](self, cls: type[M]) -> list[M]:
        with self.cond:
            return [m for m in self.received if isinstance(m, cls)]

    def _run(self) -> None:
        aeron = connect(self.aeron_dir, client_name="fake-driver")
        try:
            sub = aeron.add_subscription(CHANNEL, CONTROL)
            pubs = {CONTROL: aeron.add_exclusive_publication(CHANNEL, CONTROL),
                    ANNOUNCE: aeron.add_exclusive_publication(CHANNEL, ANNOUNCE)}
            own = {pubs[CONTROL].session_id}
            idle = pyaeron.IdleStrategy.backoff(max_park_ns=200_000)
            self._ready.set()

            def on_fragment(buf: Any, header: Any) -> None:
                if header.session_id in own:
                    return
                data = bytes(buf)
                try:
                    msg = messages.decode(data)
                except messages.DecodeError:
                    with self.cond:
                        self.raw.append(data)
                        self.cond.notify_all()
                    return
                with self.cond:
                    self.raw.append(data)
                    self.received.append(msg)
                    self.cond.notify_all()
                for reply in self.responder(msg):
                    self.send(reply, announce=isinstance(reply, ShmPoolAnnounce))

            while not self._stop.is_set():
                work = sub.poll(on_fragment, 32)
                while self._outbox:
                    stream, data = self._outbox[0]
                    if pubs[stream].offer(data) is not True:
                        break
                    self._outbox.popleft()
                    work += 1
                idle.idle(work)
        finally:
            aeron.close()


_lease_ids = itertools.count(1)


def ok_response(req: ShmAttachRequest, epoch: ProvisionedEpoch | None = None,
                **overrides: Any) -> ShmAttachResponse:
    """An OK answer to ``req``; with ``epoch`` its URIs are real provisioned regions."""
    pools: tuple[PayloadPool, ...] = (PayloadPool(pool_id=1, pool_nslots=8, stride_bytes=256,
                                                  region_uri="shm:file?path=/dev/shm/x/1.pool"),)
    header_uri, nslots, epoch_no = "shm:file?path=/dev/shm/x/header.ring", 8, 42
    if epoch is not None:
        pools = tuple(PayloadPool(pool_id=p.pool_id, pool_nslots=p.nslots,
                                  stride_bytes=p.stride_bytes, region_uri=p.uri)
                      for p in epoch.pools)
        header_uri, nslots, epoch_no = epoch.header_uri, epoch.pools[0].nslots, epoch.epoch
    fields: dict[str, Any] = {
        "correlation_id": req.correlation_id, "code": ResponseCode.OK,
        "lease_id": next(_lease_ids), "lease_expiry_timestamp_ns": time.monotonic_ns() + 3 * 10**9,
        "stream_id": req.stream_id, "epoch": epoch_no, "layout_version": 1,
        "header_nslots": nslots, "header_slot_bytes": 256, "node_id": 7,
        "payload_pools": pools, "header_region_uri": header_uri,
    }
    fields.update(overrides)
    return ShmAttachResponse(**fields)


def reject(req: ShmAttachRequest, code: ResponseCode, text: str) -> ShmAttachResponse:
    return ShmAttachResponse(correlation_id=req.correlation_id, code=code, error_message=text)


def announce_of(epoch: ProvisionedEpoch, *, timestamp_ns: int | None = None) -> ShmPoolAnnounce:
    return ShmPoolAnnounce(
        stream_id=epoch.stream_id, producer_id=0, epoch=epoch.epoch,
        announce_timestamp_ns=time.monotonic_ns() if timestamp_ns is None else timestamp_ns,
        announce_clock_domain=ClockDomain.MONOTONIC, layout_version=1,
        header_nslots=epoch.pools[0].nslots, header_slot_bytes=256,
        payload_pools=tuple(PayloadPool(pool_id=p.pool_id, pool_nslots=p.nslots,
                                        stride_bytes=p.stride_bytes, region_uri=p.uri)
                            for p in epoch.pools),
        header_region_uri=epoch.header_uri,
    )


def provision(base: Path, stream_id: int, epoch: int, *, nslots: int = 8,
              pools: tuple[tuple[int, int], ...] = ((1, 256), (2, 4096))) -> ProvisionedEpoch:
    return provision_epoch(ProvisionRequest(
        base_dir=base, namespace="test", allowed_base_dirs=(base,), stream_id=stream_id,
        epoch=epoch, header_nslots=nslots, pools=pools, permissions_mode=0o600, prefault=True,
        mlock=False, hugepages=False, pid=os.getpid(), now_ns=time.monotonic_ns(),
    ))


@contextlib.contextmanager
def no_new_threads() -> Iterator[None]:
    """Assert that the body leaves no Python thread behind."""
    before = set(threading.enumerate())
    yield
    leftover = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    assert leftover == []
