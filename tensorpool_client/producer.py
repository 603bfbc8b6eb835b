"""``Producer``: attach as PRODUCER, write frames through the seqlock, publish descriptors.

The producer maps the regions its attach response names (validated per shm-layout.md §8),
refreshes their activity timestamps every announce period from the DriverClient's Aeron thread
(A-15: the references leave that to the producer), writes each frame into slot
``seq & (n - 1)`` of the header ring and of the smallest pool whose stride fits, and then
publishes a FrameDescriptor on the descriptor stream.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final, Self

import messages
from messages import FrameDescriptor, HugepagesPolicy, Role
from shm import announced_regions, open_region
from tensorpool_client.control import DEFAULT_CHANNEL
from tensorpool_client.errors import LeaseLost
from tensorpool_client.tensor import prepare

if TYPE_CHECKING:
    from concurrent.futures import Future
    from types import TracebackType

    import numpy as np
    import numpy.typing as npt

    from messages import PublishMode
    from shm import HeaderRing, MappedRegion, PayloadPoolView
    from tensorpool_client.control import DriverClient
    from tensorpool_client.lease import Lease

log = logging.getLogger(__name__)

DEFAULT_DESCRIPTOR_STREAM_ID: Final = 1100
DEFAULT_ALLOWED_BASE_DIRS: Final = (Path("/dev/shm"),)  # noqa: S108 - the spec default base dir
DEFAULT_ACTIVITY_PERIOD_MS: Final = 1000


class Producer:
    """The exclusive writer of one stream for as long as its lease lives."""

    def __init__(
        self, client: DriverClient, stream_id: int, *,
        publish_mode: PublishMode | None = None,
        require_hugepages: HugepagesPolicy = HugepagesPolicy.UNSPECIFIED,
        descriptor_channel: str = DEFAULT_CHANNEL,
        descriptor_stream_id: int = DEFAULT_DESCRIPTOR_STREAM_ID,
        allowed_base_dirs: tuple[Path, ...] = DEFAULT_ALLOWED_BASE_DIRS,
        activity_period_ms: int = DEFAULT_ACTIVITY_PERIOD_MS,
        attach_timeout: float = 5.0,
    ) -> None:
        self._client = client
        self.lease: Lease = client.attach(stream_id, Role.PRODUCER, publish_mode=publish_mode,
                                          require_hugepages=require_hugepages,
                                          timeout=attach_timeout)
        self.stream_id = self.lease.stream_id
        self.epoch = self.lease.epoch
        self.next_seq = 0
        self.descriptors_not_sent = 0
        """Descriptors no subscriber received (none connected, or back pressure for 1 s)."""
        self._regions: list[MappedRegion] = []
        self._closed = False
        self._activity_period_ns = activity_period_ms * 1_000_000
        self._next_activity_ns = 0
        try:
            self._ring, self._pools = self._map(allowed_base_dirs)
            self._descriptors = client.publication(descriptor_channel, descriptor_stream_id)
            client.aeron.add_duty(self._refresh_activity)
        except BaseException:
            self._release_regions()
            self._detach_quietly()
            raise

    def _map(self, allowed: tuple[Path, ...]) -> tuple[HeaderRing, list[PayloadPoolView]]:
        lease = self.lease
        # The producer keeps the regions alive itself, so it skips the freshness check.
        (header_uri, header_expected), *pool_regions = announced_regions(
            stream_id=lease.stream_id, epoch=lease.epoch, header_nslots=lease.header_nslots,
            header_uri=lease.header_region_uri, layout_version=lease.layout_version,
            pools=sorted(lease.payload_pools, key=lambda p: (p.stride_bytes, p.pool_id)),
            activity_window_ns=None,
        )
        header = open_region(header_uri, header_expected, allowed_base_dirs=allowed,
                             writable=True)
        self._regions.append(header)
        pools: list[PayloadPoolView] = []
        for uri, expected in pool_regions:
            region = open_region(uri, expected, allowed_base_dirs=allowed, writable=True)
            self._regions.append(region)
            pools.append(region.payload_pool())
        return header.header_ring(), pools

    @property
    def max_payload_bytes(self) -> int:
        """The largest payload any pool of this stream can hold."""
        return self._pools[-1].stride_bytes

    def descriptor_connected(self) -> bool:
        """Whether any consumer subscribes to the descriptor stream right now."""
        return self._descriptors.is_connected()

    def offer(self, array: npt.NDArray[np.generic], *, meta_version: int = 0,
              timestamp_ns: int | None = None) -> int:
        """Write ``array`` as the next frame and publish its descriptor; returns its seq."""
        if self._closed:
            raise LeaseLost("producer is closed")
        if not self._client.lease_valid(self.lease):
            raise LeaseLost(f"lease {self.lease.lease_id} was revoked or the driver shut down")
        payload, tensor = prepare(array)
        pool = next((p for p in self._pools if p.stride_bytes >= payload.size), None)
        if pool is None:
            raise ValueError(f"payload of {payload.size} bytes exceeds the largest pool stride "
                             f"{self.max_payload_bytes}")
        seq = self.next_seq
        stamp = time.monotonic_ns() if timestamp_ns is None else timestamp_ns
        self._ring.write_frame(seq, pool, payload, tensor=tensor, timestamp_ns=stamp,
                               meta_version=meta_version)
        self.next_seq = seq + 1
        descriptor = FrameDescriptor(stream_id=self.stream_id, epoch=self.epoch, seq=seq,
                                     timestamp_ns=stamp, meta_version=meta_version, trace_id=None)
        fut = self._descriptors.offer_nowait(messages.encode(descriptor),
                                             drop_if_not_connected=True)
        fut.add_done_callback(self._count_undelivered)
        return seq

    def _count_undelivered(self, fut: Future[bool]) -> None:
        if fut.exception() is not None or fut.result() is not True:
            self.descriptors_not_sent += 1

    def _refresh_activity(self, now_ns: int) -> int:
        """On the Aeron thread: stamp every region's activityTimestampNs each period."""
        if now_ns < self._next_activity_ns:
            return 0
        self._next_activity_ns = now_ns + self._activity_period_ns
        for region in self._regions:
            region.touch_activity(now_ns)
        return 1

    def close(self, detach_timeout: float = 5.0) -> None:
        """Stop refreshing, detach the lease, unmap (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._client.aeron.running:
            self._client.aeron.remove_duty(self._refresh_activity)
            self._descriptors.close()
        self._detach_quietly(detach_timeout)
        self._release_regions()

    def _detach_quietly(self, timeout: float = 5.0) -> None:
        if not self._client.lease_valid(self.lease) or not self._client.aeron.running:
            return
        try:
            self._client.detach(self.lease, timeout)
        except Exception as exc:
            log.warning("detach of lease %d failed: %s", self.lease.lease_id, exc)

    def _release_regions(self) -> None:
        for region in self._regions:
            region.close()
        self._regions.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
