"""``Producer``: attach as PRODUCER, write frames through the seqlock, publish descriptors.

The producer maps the regions its attach response names (validated per shm-layout.md §8),
refreshes their activity timestamps every announce period from the DriverClient's background
thread (A-15: the references leave that to the producer), and writes frame ``seq`` into slot
``seq & (n - 1)`` of the header ring and of the smallest pool whose stride fits.

The frame path runs entirely on the caller's thread and allocates almost nothing:

* ``claim(shape, dtype)`` stores "in progress" in the slot's seqlock word (writer step 1) and
  hands out a writable ndarray view of the payload slot, cached per (layout, slot);
* ``commit()`` copies a pre-packed 248-byte slot header for that layout (step 3, a full
  overwrite), patches the per-frame fields with one ``struct.pack_into``, stores "committed"
  (step 4) and offers a pre-encoded FrameDescriptor patched in place (step 5) on a concurrent
  publication, straight from this thread;
* ``offer(array)`` is ``claim`` + one numpy copy + ``commit``;
* ``relay(layout, seq, payload, ...)`` writes a frame that another stream carried first (the
  bridge's receiver): the source's seq, tensor header, timestamp and metaVersion are kept
  (bridge.md §6.5), the payload is one memcpy and the descriptor is published without waiting.

On x86-64 the two seqlock stores are ordinary 8-byte stores, which the CPU never reorders with
the payload and header stores between them (TSO), and CPython performs them in program order.

Back pressure: by default the ring overwrites, as the spec's producers do. With
``overwrite_unread=False`` the producer never writes a slot its slowest known consumer may not
have read yet, judged from the consumers' ``QosConsumer`` reports (readers.py), and waits in
``claim`` (up to ``claim_timeout``, then ``BackPressured``).
"""

from __future__ import annotations

import contextlib
import logging
import struct
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, Self

import numpy as np

from messages import HugepagesPolicy, MajorOrder, Role
from shm import announced_regions, open_region
from shm.slot_layout import TensorDescriptor, pack_slot_body
from shm.superblock import HEADER_SLOT_BYTES, SUPERBLOCK_SIZE
from tensorpool_client.control import DEFAULT_CHANNEL
from tensorpool_client.errors import BackPressured, ClientClosed, LeaseLost
from tensorpool_client.readers import DEFAULT_WINDOW_NS, ConsumerProgress
from tensorpool_client.tensor import MAX_DIMS, wire_dtype
from tensorpool_client.wire_fast import DescriptorEncoder

if TYPE_CHECKING:
    from collections.abc import Buffer
    from types import TracebackType

    import numpy.typing as npt

    from messages import PublishMode
    from shm import HeaderRing, MappedRegion, PayloadPoolView
    from tensorpool_client.control import DriverClient
    from tensorpool_client.lease import Lease

log = logging.getLogger(__name__)

DEFAULT_DESCRIPTOR_STREAM_ID: Final = 1100
DEFAULT_QOS_STREAM_ID: Final = 1200
DEFAULT_ALLOWED_BASE_DIRS: Final = (Path("/dev/shm"),)  # noqa: S108 - the spec default base dir
DEFAULT_ACTIVITY_PERIOD_MS: Final = 1000
QOS_FRAGMENT_LIMIT: Final = 256
_INT32_MAX: Final = 0x7FFFFFFF
_WORDS_PER_SLOT: Final = HEADER_SLOT_BYTES // 8
_SLOT_BODY_AT: Final = 8
_SLOT_DYNAMIC_AT: Final = 12
_SLOT_DYNAMIC: Final = struct.Struct("<IHIQI")
"""payloadSlot, poolId, payloadOffset, timestampNs, metaVersion: slot bytes 12..33."""
_MAX_PLANS: Final = 64
DESCRIPTOR_TIMEOUT_NS: Final = 1_000_000_000
"""How long ``commit`` retries a back-pressured descriptor (a relay never waits)."""

Order = Literal["C", "F"]


class _Plan:
    """Everything about one frame layout that does not change from frame to frame."""

    __slots__ = ("body", "dtype", "nbytes", "order", "pool", "shape", "views")

    def __init__(self, pool: PayloadPoolView, shape: tuple[int, ...], dtype: np.dtype[np.generic],
                 order: Order, nbytes: int) -> None:
        self.pool = pool
        self.shape = shape
        self.dtype = dtype
        self.order = order
        self.nbytes = nbytes
        self.views: list[npt.NDArray[np.generic] | None] = [None] * pool.nslots
        probe = self.view(0)
        self.views[0] = None  # built again on first use; the probe only reads its strides
        tensor = TensorDescriptor(
            dtype=int(wire_dtype(dtype)),
            major_order=int(MajorOrder.COLUMN if order == "F" and len(shape) > 1
                            else MajorOrder.ROW),
            dims=shape, strides=tuple(probe.strides),
        )
        if any(abs(s) > _INT32_MAX for s in tensor.strides):
            raise ValueError("strides must fit int32")
        self.body = pack_slot_body(values_len_bytes=nbytes, payload_slot=0,
                                   pool_id=pool.pool_id, timestamp_ns=0, meta_version=0,
                                   tensor=tensor)

    def view(self, index: int) -> npt.NDArray[np.generic]:
        """The writable array over payload slot ``index`` (cached)."""
        array = self.pool.slots[index, : self.nbytes].view(self.dtype).reshape(
            self.shape, order=self.order)
        self.views[index] = array
        return array


class RelayLayout:
    """How ``Producer.relay`` writes frames of one tensor header and length.

    Built by ``Producer.relay_layout``: the pool (the smallest stride that fits, then the
    lowest pool id, as the bridge's §6.5 step 7 and Julia's ``select_pool`` choose) and the
    pre-packed slot body. Valid for the producer that made it, until it closes.
    """

    __slots__ = ("body", "nbytes", "pool", "tensor")

    def __init__(self, pool: PayloadPoolView, tensor: TensorDescriptor, nbytes: int) -> None:
        self.pool = pool
        self.tensor = tensor
        self.nbytes = nbytes
        self.body = pack_slot_body(values_len_bytes=nbytes, payload_slot=0,
                                   pool_id=pool.pool_id, timestamp_ns=0, meta_version=0,
                                   tensor=tensor)


class FrameClaim:
    """A claimed slot: fill ``array``, then ``commit()`` (or leave the ``with`` block).

    ``with producer.claim(shape, dtype) as array:`` commits on a normal exit and aborts if
    the block raises. After commit or abort the array must not be written again: the slot
    belongs to the ring and will be reused.
    """

    __slots__ = ("_index", "_plan", "_producer", "array", "seq")

    def __init__(self, producer: Producer, plan: _Plan, index: int, seq: int,
                 array: npt.NDArray[np.generic]) -> None:
        self._producer = producer
        self._plan = plan
        self._index = index
        self.seq = seq
        self.array = array

    def commit(self, *, meta_version: int = 0, timestamp_ns: int | None = None) -> int:
        """Write the header, commit the seqlock, publish the descriptor; returns the seq."""
        return self._producer._commit(self, meta_version, timestamp_ns)  # noqa: SLF001

    def abort(self) -> None:
        """Give the slot up without publishing (the seq is reused by the next claim)."""
        self._producer._abort(self)  # noqa: SLF001

    def __enter__(self) -> npt.NDArray[np.generic]:
        return self.array

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class Producer:
    """The exclusive writer of one stream for as long as its lease lives.

    Frame methods (``claim``, ``commit``, ``offer``, ``wait_for_consumers``) are meant for one
    thread at a time; lease keepalives and activity stamps run on the client's thread.
    """

    def __init__(
        self, client: DriverClient, stream_id: int, *,
        publish_mode: PublishMode | None = None,
        require_hugepages: HugepagesPolicy = HugepagesPolicy.UNSPECIFIED,
        descriptor_channel: str = DEFAULT_CHANNEL,
        descriptor_stream_id: int = DEFAULT_DESCRIPTOR_STREAM_ID,
        qos_channel: str = DEFAULT_CHANNEL,
        qos_stream_id: int = DEFAULT_QOS_STREAM_ID,
        allowed_base_dirs: tuple[Path, ...] = DEFAULT_ALLOWED_BASE_DIRS,
        activity_period_ms: int = DEFAULT_ACTIVITY_PERIOD_MS,
        attach_timeout: float = 5.0,
        overwrite_unread: bool = True,
        claim_timeout: float = 1.0,
        consumer_window_ns: int = DEFAULT_WINDOW_NS,
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
        self.overwrite_unread = overwrite_unread
        self.claim_timeout = claim_timeout
        self.waits_for_consumers = 0
        """Claims that had to wait for the slowest consumer (``overwrite_unread=False``)."""
        self._regions: list[MappedRegion] = []
        self._closed = False
        self._activity_period_ns = activity_period_ms * 1_000_000
        self._next_activity_ns = 0
        self._plans: dict[tuple[object, object, str], _Plan] = {}
        self._layouts: dict[tuple[TensorDescriptor, int], RelayLayout] = {}
        self._claimed: FrameClaim | None = None
        self._lease_generation = client.notices.lease_generation
        self._room_until = 0
        self._qos_polled_ns = 0
        self.progress = ConsumerProgress(client.notices, self.stream_id, self.epoch,
                                         window_ns=consumer_window_ns)
        """The consumers this producer knows of, from their hellos and QoS reports."""
        self._encoder = DescriptorEncoder(self.stream_id, self.epoch)
        try:
            self._ring, self._pools = self._map(allowed_base_dirs)
            self._raw = self._ring.raw
            self._words = self._ring.words
            self._mask = self._ring.nslots - 1
            self._descriptors = client.direct_publication(descriptor_channel,
                                                          descriptor_stream_id)
            self._qos = client.direct_subscription(qos_channel, qos_stream_id)
            client.aeron.add_duty(self._duty)
        except BaseException:
            for name in ("_descriptors", "_qos"):
                handle = getattr(self, name, None)
                if handle is not None:
                    handle.close()
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

    @property
    def nslots(self) -> int:
        """Slots of the header ring (and of every pool)."""
        return self._ring.nslots

    def descriptor_connected(self) -> bool:
        """Whether any subscriber (of any stream) listens on the descriptor stream."""
        return self._descriptors.is_connected()

    # ------------------------------------------------------------------ frames

    def claim(self, shape: tuple[int, ...] | int, dtype: npt.DTypeLike = np.uint8, *,
              order: Order = "C") -> FrameClaim:
        """Claim the next slot for a ``shape``/``dtype`` array in ``order`` (C or F).

        The slot's seqlock word says "in progress" from now until ``commit``; readers drop
        the frame that was there. Raises ValueError when no pool is large enough, LeaseLost
        when the lease is gone, BackPressured (``overwrite_unread=False``) when the slowest
        consumer did not free the slot within ``claim_timeout``.
        """
        self._may_write()
        try:
            plan = self._plans[shape, dtype, order]
        except (KeyError, TypeError):
            plan = self._plan(shape, dtype, order)
        seq = self.next_seq
        if seq >= self._room_until:
            self._make_room(seq)
        index = seq & self._mask
        self._words[(SUPERBLOCK_SIZE // 8) + index * _WORDS_PER_SLOT] = seq << 1
        array = plan.views[index]
        if array is None:
            array = plan.view(index)
        claim = FrameClaim(self, plan, index, seq, array)
        self._claimed = claim
        return claim

    def commit(self, *, meta_version: int = 0, timestamp_ns: int | None = None) -> int:
        """Commit the open claim (see ``FrameClaim.commit``)."""
        if self._claimed is None:
            raise RuntimeError("no frame is claimed")
        return self._commit(self._claimed, meta_version, timestamp_ns)

    def offer(self, array: npt.NDArray[np.generic], *, meta_version: int = 0,
              timestamp_ns: int | None = None) -> int:
        """Write ``array`` as the next frame and publish its descriptor; returns its seq.

        C-contiguous and other layouts are written in C order, Fortran-contiguous arrays in
        their own (COLUMN) order; big-endian data is converted to little-endian.
        """
        order: Order = "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"
        claim = self.claim(array.shape, array.dtype, order=order)
        try:
            claim.array[...] = array
        except BaseException:
            claim.abort()
            raise
        return self._commit(claim, meta_version, timestamp_ns)

    def _commit(self, claim: FrameClaim, meta_version: int, timestamp_ns: int | None) -> int:
        if claim is not self._claimed:
            raise RuntimeError(f"frame {claim.seq} is not the open claim")
        self._claimed = None
        seq = claim.seq
        index = claim._index  # noqa: SLF001 - FrameClaim is this module's record
        plan = claim._plan  # noqa: SLF001
        stamp = time.monotonic_ns() if timestamp_ns is None else timestamp_ns
        self._finish(seq, index, plan.body, plan.pool.pool_id, stamp, meta_version)
        self._publish(self._encoder.patch(seq, stamp, meta_version), DESCRIPTOR_TIMEOUT_NS)
        return seq

    def _finish(  # noqa: PLR0917 - per frame: positional
        self, seq: int, index: int, body: bytes, pool_id: int, stamp: int, meta_version: int,
    ) -> None:
        """Writer steps 3-4: the whole slot header, then the committed word."""
        start = SUPERBLOCK_SIZE + index * HEADER_SLOT_BYTES
        raw = self._raw
        raw[start + _SLOT_BODY_AT : start + HEADER_SLOT_BYTES] = body
        _SLOT_DYNAMIC.pack_into(raw, start + _SLOT_DYNAMIC_AT, index, pool_id, 0, stamp,
                                meta_version)
        self._words[(SUPERBLOCK_SIZE // 8) + index * _WORDS_PER_SLOT] = (seq << 1) | 1
        self.next_seq = seq + 1

    def _publish(self, descriptor: bytearray, timeout_ns: int) -> bool:
        """Writer step 5: offer the patched descriptor from this thread."""
        try:
            sent = self._descriptors.offer(descriptor, timeout_ns)
        except ClientClosed as exc:
            raise LeaseLost("the client closed: the descriptor cannot be published") from exc
        if not sent:
            self.descriptors_not_sent += 1
        return sent

    # ------------------------------------------------------------------ relaying

    def relay_layout(self, tensor: TensorDescriptor, nbytes: int) -> RelayLayout | None:
        """The layout ``relay`` writes ``nbytes``-byte frames of ``tensor`` with, or None
        when no pool is large enough. Cached (up to 64 layouts): build it once per header."""
        key = (tensor, nbytes)
        layout = self._layouts.get(key)
        if layout is None:
            pool = next((p for p in self._pools if p.stride_bytes >= nbytes), None)
            if pool is None:
                return None
            if len(self._layouts) >= _MAX_PLANS:
                self._layouts.clear()
            layout = self._layouts[key] = RelayLayout(pool, tensor, nbytes)
        return layout

    def relay(self, layout: RelayLayout, seq: int, payload: Buffer, *, timestamp_ns: int,
              meta_version: int, trace_id: int = 0) -> bool:
        """Write ``payload`` as frame ``seq`` and publish its descriptor; True if published.

        For relays such as the bridge's receiver, which must keep a frame's identity
        (bridge.md §6.5): ``seq`` is the source's (it may skip ahead but never go back:
        ValueError), the slot gets ``timestamp_ns`` and ``meta_version`` and ``layout``'s
        tensor header, and the descriptor carries ``meta_version``, ``trace_id`` and this
        host's clock at publication (§6.6). ``payload`` is any contiguous buffer of exactly
        ``layout.nbytes`` bytes. The descriptor is offered once, without waiting: a relay's loop
        must not block (a failed offer is counted in ``descriptors_not_sent``, the slot stays
        committed). LeaseLost when the lease is gone; BackPressured as for ``claim``.
        """
        self._may_write()
        if seq < self.next_seq:
            raise ValueError(f"relayed seq {seq} is below the next seq {self.next_seq}")
        pool = layout.pool
        size = layout.nbytes
        data = memoryview(payload)
        if data.format != "B" or data.ndim != 1:
            data = data.cast("B")  # TypeError for a non-contiguous buffer
        if data.nbytes != size:
            raise ValueError(f"payload of {data.nbytes} bytes, the layout holds {size}")
        if seq >= self._room_until:
            self._make_room(seq)
        index = seq & self._mask
        self._words[(SUPERBLOCK_SIZE // 8) + index * _WORDS_PER_SLOT] = seq << 1
        start = pool.offset(index)
        pool.raw[start : start + size] = data
        self._finish(seq, index, layout.body, pool.pool_id, timestamp_ns, meta_version)
        return self._publish(self._encoder.patch_traced(
            seq, time.monotonic_ns(), meta_version, trace_id), 0)

    def _abort(self, claim: FrameClaim) -> None:
        if claim is self._claimed:
            self._claimed = None  # the slot stays "in progress" until this seq is claimed again

    def _plan(self, shape: object, dtype: npt.DTypeLike, order: Order) -> _Plan:
        dims = (shape,) if isinstance(shape, int) else tuple(shape)  # type: ignore[arg-type]
        if not 1 <= len(dims) <= MAX_DIMS:
            raise ValueError(f"arrays must have 1..{MAX_DIMS} dimensions, got {len(dims)}")
        if any(not 0 <= int(d) <= _INT32_MAX for d in dims):
            raise ValueError("dims must be in 0..2**31-1")
        if order not in {"C", "F"}:
            raise ValueError(f"order must be 'C' or 'F', got {order!r}")
        wanted = np.dtype(dtype)
        wire_dtype(wanted)  # ValueError for dtypes the schema cannot carry
        little = wanted.newbyteorder("<") if wanted.byteorder == ">" else wanted
        nbytes = int(np.prod(dims, dtype=np.int64)) * little.itemsize
        pool = next((p for p in self._pools if p.stride_bytes >= nbytes), None)
        if pool is None:
            raise ValueError(f"payload of {nbytes} bytes exceeds the largest pool stride "
                             f"{self.max_payload_bytes}")
        plan = _Plan(pool, tuple(int(d) for d in dims), little, order, nbytes)
        if len(self._plans) >= _MAX_PLANS:
            self._plans.clear()
        with contextlib.suppress(TypeError):  # an unhashable shape (a list) is planned anew
            self._plans[shape, dtype, order] = plan
        return plan

    def _may_write(self) -> None:
        """What every frame write checks first: no open claim, not closed, lease alive."""
        if self._claimed is not None:
            raise RuntimeError(f"frame {self._claimed.seq} is claimed and not committed yet")
        if self._closed:
            raise LeaseLost("producer is closed")
        if self._lease_generation != self._client.notices.lease_generation:
            self._check_lease()

    def _check_lease(self) -> None:
        self._lease_generation = self._client.notices.lease_generation
        if not self._client.lease_valid(self.lease):
            raise LeaseLost(f"lease {self.lease.lease_id} was revoked or the driver shut down")

    # ------------------------------------------------------------------ consumers

    def poll_qos(self) -> int:
        """Read pending QosConsumer reports (claims and waits do this themselves)."""
        self._qos_polled_ns = time.monotonic_ns()
        return self._qos.poll(self.progress.on_fragment, QOS_FRAGMENT_LIMIT)

    def wait_for_consumers(self, timeout: float = 5.0, count: int = 1) -> int:
        """Wait until ``count`` consumers of this stream are known and the descriptor stream
        is connected; returns how many are known then (fewer only on timeout).

        A consumer becomes known by its ConsumerHello (sent when it starts and every second)
        or its QoS report, so a producer started after its consumers waits up to ~1 s.
        """
        deadline = time.monotonic() + timeout
        while True:
            self.poll_qos()
            known = len(self.progress.known())
            if known >= count and self._descriptors.is_connected():
                return known
            if time.monotonic() >= deadline:
                return known if self._descriptors.is_connected() else 0
            time.sleep(0.002)

    def _make_room(self, seq: int) -> None:
        """Set ``_room_until``: how far claims may go before looking at consumers again."""
        nslots = self._ring.nslots
        if self.overwrite_unread:
            self._room_until = seq + (1 << 62)
            return
        deadline = 0
        while True:
            self.poll_qos()
            slowest = self.progress.slowest(seq)
            if slowest is None:  # nobody to wait for: look again a quarter ring later
                self._room_until = seq + max(1, nslots // 4)
                return
            room = slowest[1] + nslots
            if seq < room:
                self._room_until = room
                return
            now = time.monotonic_ns()
            if deadline == 0:
                self.waits_for_consumers += 1
                deadline = now + int(self.claim_timeout * 1e9)
            elif now >= deadline:
                raise BackPressured(
                    f"consumer {slowest[0]} has not read past seq {slowest[1]} "
                    f"within {self.claim_timeout} s", slowest[0], slowest[1])
            time.sleep(0)

    # ------------------------------------------------------------------ background duty

    def _duty(self, now_ns: int) -> int:
        """On the client's thread: activity stamps each period; QoS the caller left unread."""
        if now_ns < self._next_activity_ns:
            return 0
        self._next_activity_ns = now_ns + self._activity_period_ns
        for region in self._regions:
            region.touch_activity(now_ns)
        if now_ns - self._qos_polled_ns > self._activity_period_ns:
            with contextlib.suppress(ClientClosed):  # keep QoS drained while no frame is written
                self.poll_qos()
        return 1

    # ------------------------------------------------------------------ lifecycle

    def close(self, detach_timeout: float = 5.0) -> None:
        """Stop refreshing, detach the lease, unmap (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._client.aeron.running:
            self._client.aeron.remove_duty(self._duty)
        self._descriptors.close()
        self._qos.close()
        self._detach_quietly(detach_timeout)
        self._claimed = None
        self._plans.clear()
        self._layouts.clear()
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
            try:
                region.close()
            except BufferError:
                log.warning("a claimed array of %s is still referenced: it stays mapped until "
                            "it is freed", region.path)
        self._regions.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
