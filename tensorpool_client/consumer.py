"""``Consumer``: attach as CONSUMER, map read-only, turn descriptors into zero-copy frames.

Each FrameDescriptor is checked with the reader side of the seqlock (shm-layout.md §4): the
slot header is snapshotted between two loads of ``seqCommit`` and validated, and the payload is
handed out as a read-only numpy view into the pool. The view is not protected by the seqlock
once returned: ``Frame.intact()`` re-checks the slot word, and ``Frame.copy()`` copies and then
re-checks, so a frame overwritten during the copy is reported instead of returned torn.
Announces with a higher epoch make the consumer remap (the old mapping is released), and so
does a superblock whose pid or epoch changed under the mapping (shm-layout.md 8 step 8).
"""

from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Self

import messages
from messages import DecodeError, FrameDescriptor, Role
from shm import RegionValidationError, announced_regions, open_region, seqlock
from shm.slot_layout import SEQ_COMMIT_BYTES, invalid_reason, unpack_slot_body
from tensorpool_client.control import DEFAULT_CHANNEL
from tensorpool_client.errors import FrameOverwritten, LeaseLost
from tensorpool_client.producer import DEFAULT_ALLOWED_BASE_DIRS, DEFAULT_DESCRIPTOR_STREAM_ID
from tensorpool_client.tensor import view_of

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from types import TracebackType

    import numpy as np
    import numpy.typing as npt

    from messages import PayloadPool, ShmPoolAnnounce
    from shm import HeaderRing, MappedRegion, PayloadPoolView
    from tensorpool_client.control import DriverClient
    from tensorpool_client.lease import Lease

log = logging.getLogger(__name__)

REMAP_RETRY_NS: Final = 250_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    """One accepted frame; ``array`` is a zero-copy view valid until the next ``poll``."""

    seq: int
    epoch: int
    stream_id: int
    pool_id: int
    timestamp_ns: int
    meta_version: int
    array: npt.NDArray[np.generic]
    _still_committed: Callable[[], bool] = field(repr=False, compare=False)

    def intact(self) -> bool:
        """True while the producer has not started rewriting this frame's slot."""
        try:
            return self._still_committed()
        except ValueError:  # the ring was released by a remap or close
            return False

    def copy(self) -> npt.NDArray[np.generic]:
        """A private copy of the payload; FrameOverwritten if the slot changed meanwhile."""
        data = self.array.copy()
        if not self.intact():
            raise FrameOverwritten(f"frame {self.seq} was overwritten while copying")
        return data


@dataclass(slots=True)
class _Mapping:
    epoch: int
    ring: HeaderRing
    pools: dict[int, PayloadPoolView]
    regions: list[MappedRegion]


class Consumer:
    """A reader of one stream under a CONSUMER lease."""

    def __init__(
        self, client: DriverClient, stream_id: int, *,
        descriptor_channel: str = DEFAULT_CHANNEL,
        descriptor_stream_id: int = DEFAULT_DESCRIPTOR_STREAM_ID,
        allowed_base_dirs: tuple[Path, ...] = DEFAULT_ALLOWED_BASE_DIRS,
        activity_window_ns: int | None = 3_000_000_000,
        attach_timeout: float = 5.0,
    ) -> None:
        self._client = client
        self._allowed = allowed_base_dirs
        self._window = activity_window_ns
        self.drops: collections.Counter[str] = collections.Counter()
        """Dropped descriptors by reason: epoch, not_committed, other_seq, torn, invalid."""
        self.remap_failures = 0
        self._mapping: _Mapping | None = None
        self._retired: list[MappedRegion] = []
        self._last_attempt: tuple[int, int] | None = None
        self._identity_checked_for: ShmPoolAnnounce | None = None
        self.identity_remaps = 0
        """Mappings dropped because their superblock pid or epoch changed under them."""
        self._closed = False
        self.lease: Lease = client.attach(stream_id, Role.CONSUMER, timeout=attach_timeout)
        self.stream_id = self.lease.stream_id
        try:
            self._descriptors = client.subscription(descriptor_channel, descriptor_stream_id)
        except BaseException:
            self._client.detach(self.lease)
            raise
        self._try_map(self.lease.epoch, self.lease.header_nslots, self.lease.layout_version,
                      self.lease.header_region_uri, self.lease.payload_pools)

    @property
    def epoch(self) -> int | None:
        """The epoch currently mapped (None until a mapping succeeded)."""
        return None if self._mapping is None else self._mapping.epoch

    def poll(self, timeout: float = 0.0) -> Frame | None:
        """The next valid frame, waiting up to ``timeout`` seconds; None if none arrived."""
        deadline = time.monotonic() + timeout
        while True:
            if self._closed:
                raise LeaseLost("consumer is closed")
            if not self._client.lease_valid(self.lease):
                raise LeaseLost(f"lease {self.lease.lease_id} was revoked or the driver shut down")
            self._remap_if_announced()
            data = self._descriptors.poll(max(deadline - time.monotonic(), 0.0))
            if data is None:
                return None
            frame = self._on_descriptor(data)
            if frame is not None:
                return frame
            if time.monotonic() >= deadline:
                return None

    def _on_descriptor(self, data: bytes) -> Frame | None:
        try:
            msg = messages.decode(data)
        except DecodeError:
            self.drops["undecodable"] += 1
            return None
        if not isinstance(msg, FrameDescriptor) or msg.stream_id != self.stream_id:
            return None
        if self._mapping is None or msg.epoch != self._mapping.epoch:
            self._remap_if_announced()
        mapping = self._mapping
        if mapping is None or msg.epoch != mapping.epoch:
            self.drops["epoch"] += 1
            return None
        return self._read(mapping, msg)

    def _read(self, mapping: _Mapping, msg: FrameDescriptor) -> Frame | None:
        ring = mapping.ring
        index = ring.slot_index(msg.seq)
        first = ring.load_seq_commit(index)
        if not seqlock.is_committed(first):
            self.drops["not_committed"] += 1
            return None
        if seqlock.word_seq(first) != msg.seq:
            self.drops["other_seq"] += 1
            return None
        body = ring.slots[index].tobytes()[SEQ_COMMIT_BYTES:]
        if not seqlock.accepts(first, ring.load_seq_commit(index), msg.seq):
            self.drops["torn"] += 1
            return None
        fields = unpack_slot_body(body)
        pool = mapping.pools.get(fields.pool_id)
        if pool is None or invalid_reason(fields, index, pool.nslots, pool.stride_bytes):
            self.drops["invalid"] += 1
            return None
        assert fields.tensor is not None
        array = view_of(fields.tensor, pool.slot(index), fields.values_len_bytes)
        if array is None:
            self.drops["invalid"] += 1
            return None
        return Frame(
            seq=msg.seq, epoch=mapping.epoch, stream_id=self.stream_id, pool_id=fields.pool_id,
            timestamp_ns=fields.timestamp_ns, meta_version=fields.meta_version, array=array,
            _still_committed=lambda: ring.load_seq_commit(index) == first,
        )

    def _remap_if_announced(self) -> None:
        ann = self._client.latest_announce(self.stream_id)
        if ann is None:
            return
        mapping = self._mapping
        if mapping is not None and ann.epoch <= mapping.epoch:
            if ann.epoch == mapping.epoch and ann is not self._identity_checked_for:
                self._identity_checked_for = ann
                self._remap_if_reprovisioned(mapping, ann)
            return
        self._try_map(ann.epoch, ann.header_nslots, ann.layout_version, ann.header_region_uri,
                      ann.payload_pools)

    def _remap_if_reprovisioned(self, mapping: _Mapping, ann: ShmPoolAnnounce) -> None:
        """Remap (or, failing that, unmap) regions whose superblock pid or epoch changed.

        Checked once per new announce of the mapped epoch rather than per descriptor: the
        check reads every superblock, and the announce period is what the spec's freshness
        rules already run on.
        """
        if not any(region.identity_changed() for region in mapping.regions):
            return
        self.identity_remaps += 1
        log.info("stream %d epoch %d was re-provisioned in place: remapping",
                 self.stream_id, mapping.epoch)
        self._mapping = None
        self._retired.extend(mapping.regions)
        self._last_attempt = None
        self._try_map(ann.epoch, ann.header_nslots, ann.layout_version, ann.header_region_uri,
                      ann.payload_pools)

    def _try_map(self, epoch: int, nslots: int, layout: int, header_uri: str,
                 pools: tuple[PayloadPool, ...]) -> None:
        now = time.monotonic_ns()
        last = self._last_attempt
        if last is not None and last[0] == epoch and now - last[1] < REMAP_RETRY_NS:
            return
        self._last_attempt = (epoch, now)
        regions: list[MappedRegion] = []
        try:
            (uri, expected), *pool_regions = announced_regions(
                stream_id=self.stream_id, epoch=epoch, header_nslots=nslots,
                header_uri=header_uri, pools=pools, layout_version=layout,
                activity_window_ns=self._window,
            )
            header = open_region(uri, expected, allowed_base_dirs=self._allowed)
            regions.append(header)
            views: dict[int, PayloadPoolView] = {}
            for uri, expected in pool_regions:
                region = open_region(uri, expected, allowed_base_dirs=self._allowed)
                regions.append(region)
                views[expected.pool_id] = region.payload_pool()
            new = _Mapping(epoch, header.header_ring(), views, regions)
        except (RegionValidationError, OSError, ValueError) as exc:
            self.remap_failures += 1
            log.info("cannot map epoch %d of stream %d: %s", epoch, self.stream_id, exc)
            for region in regions:
                region.close()
            return
        old, self._mapping = self._mapping, new
        if old is not None:
            self._retired.extend(old.regions)
        self._close_retired()

    def _close_retired(self) -> None:
        """Unmap old epochs; a mapping a caller still holds a frame view of waits for later."""
        still: list[MappedRegion] = []
        for region in self._retired:
            try:
                region.close()
            except BufferError:
                still.append(region)
        self._retired = still

    def close(self, detach_timeout: float = 5.0) -> None:
        """Unsubscribe, detach the lease, unmap (idempotent)."""
        if self._closed:
            return
        self._closed = True
        running = self._client.aeron.running
        if running:
            self._descriptors.close()
        if running and self._client.lease_valid(self.lease):
            try:
                self._client.detach(self.lease, detach_timeout)
            except Exception as exc:
                log.warning("detach of lease %d failed: %s", self.lease.lease_id, exc)
        if self._mapping is not None:
            self._retired.extend(self._mapping.regions)
            self._mapping = None
        self._close_retired()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
