"""The one place the bridge touches the client library (``tensorpool_client``).

The sender is a CONSUMER of its source stream and the receiver the PRODUCER of its
destination stream (B-2); leases, keepalives, region mapping and validation, remapping on a
new epoch and the producer's activity refresh all come from ``DriverClient``, ``Consumer``
and ``Producer``. Two things the bridge needs are not in the client's public API on main:
the raw 256-byte slot of a frame (the sender forwards it verbatim, bridge.md §5.3) and
writing a frame whose seq, tensor header, timestamp and metaVersion are given (the receiver
preserves the source's, §6.5). Until the data-plane rework (issue 11, claim/commit) offers
them, this module reaches the consumer's current mapping and the producer's ring and pools
directly. Those accesses are marked ``SLF001`` and confined here, so moving to the new API
is a change of this file only.

Descriptors are read and published by the bridge's own network thread (its own Aeron client
on the same media driver): the client's Consumer/Producer descriptor streams are left unused
(the consumer's is closed so its thread does not copy every descriptor for nobody).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

from messages import PublishMode
from shm import seqlock
from shm.superblock import HEADER_SLOT_BYTES, SUPERBLOCK_SIZE
from tensorpool_bridge.chunking import chunk_count
from tensorpool_bridge.reassembly import header_problem
from tensorpool_client import Consumer, DriverClient, Producer

if TYPE_CHECKING:
    from tensorpool_bridge.config import BridgeConfig
    from tensorpool_bridge.reassembly import AssembledFrame
    from tensorpool_client import Lease

log = logging.getLogger(__name__)

MAX_CHUNKS: Final = 65535
SLOT_BYTES: Final = 256


def driver_client(cfg: BridgeConfig) -> DriverClient:
    """A started client of the local driver (one per lease: every lease gets its own id)."""
    d = cfg.driver
    return DriverClient(
        cfg.aeron_dir, control_channel=d.control_channel, control_stream_id=d.control_stream_id,
        announce_channel=d.announce_channel, announce_stream_id=d.announce_stream_id,
        keepalive_interval_ms=d.keepalive_interval_ms,
    ).start()


class SourceStream:
    """The sender's CONSUMER lease of ``source_stream_id`` and §5.2 steps 2-6 on its SHM."""

    def __init__(self, client: DriverClient, cfg: BridgeConfig, stream_id: int) -> None:
        self._client = client
        self._consumer = Consumer(
            client, stream_id, descriptor_channel=cfg.local_channel,
            descriptor_stream_id=cfg.local_descriptor_stream_id,
            allowed_base_dirs=cfg.driver.allowed_base_dirs,
            attach_timeout=cfg.attach_timeout_ms / 1000,
        )
        self._consumer._descriptors.close()  # noqa: SLF001 - the network thread reads them
        self.stream_id = stream_id
        self._chunk_bytes = cfg.effective_chunk_bytes
        self._max_payload = cfg.max_payload_bytes

    @property
    def lease(self) -> Lease:
        return self._consumer.lease

    @property
    def epoch(self) -> int | None:
        """The epoch mapped now (None while nothing could be mapped)."""
        return self._consumer.epoch

    def lease_valid(self) -> bool:
        return self._client.lease_valid(self._consumer.lease)

    def follow(self, epoch: int) -> None:
        """Remap when the driver has announced ``epoch`` and it is newer than the mapping."""
        mapped = self._consumer.epoch
        if mapped is None or epoch > mapped:
            self._consumer._remap_if_announced()  # noqa: SLF001 - the consumer's remap rules

    def read(self, seq: int, epoch: int) -> tuple[bytes, bytes] | str:  # noqa: PLR0911 - one return per skip reason of §5.2
        """(slot, payload) private copies of frame ``seq``, or the ``frames_skipped`` reason."""
        if self._consumer.epoch != epoch:
            self.follow(epoch)
        mapping = self._consumer._mapping  # noqa: SLF001
        if mapping is None or mapping.epoch != epoch:
            return "epoch"
        index = seq & (mapping.nslots - 1)
        start = SUPERBLOCK_SIZE + index * HEADER_SLOT_BYTES
        word_at, words = start // 8, mapping.words
        first = seqlock.load(words, word_at)
        if not seqlock.is_committed(first) or seqlock.word_seq(first) != seq:
            return "not_committed"
        slot = mapping.raw[start : start + HEADER_SLOT_BYTES].tobytes()
        length = int.from_bytes(slot[8:12], "little")
        fields = header_problem(slot, seq, length)
        if fields is None:
            return "torn" if seqlock.load(words, word_at) != first else "bad_header"
        pool = mapping.pools.get(fields.pool_id)
        if pool is None or length > pool.stride_bytes:
            return "bad_header"
        if length == 0:
            return "zero_length"
        if length > self._max_payload:
            return "too_large"
        if chunk_count(length, self._chunk_bytes) > MAX_CHUNKS:
            return "too_many_chunks"
        payload = pool.copy_out(index, length)
        if seqlock.load(words, word_at) != first:
            return "torn"
        return slot, payload

    def close(self) -> None:
        self._consumer.close()


class DestStream:
    """The receiver's PRODUCER lease of ``dest_stream_id``: writes frames as the source had them."""

    def __init__(self, client: DriverClient, cfg: BridgeConfig, stream_id: int) -> None:
        self._client = client
        self._producer = Producer(
            client, stream_id, publish_mode=PublishMode.EXISTING_OR_CREATE,
            descriptor_channel=cfg.local_channel,
            descriptor_stream_id=cfg.local_descriptor_stream_id,
            allowed_base_dirs=cfg.driver.allowed_base_dirs,
            attach_timeout=cfg.attach_timeout_ms / 1000,
        )
        if self._producer.stream_id != stream_id:
            self._producer.close()
            raise ValueError(f"driver granted stream {self._producer.stream_id}, "
                             f"not {stream_id}: the wire id is fixed")
        pools = self._producer._pools  # noqa: SLF001 - sorted by stride by the producer
        self._pools = {p.pool_id: p for p in pools}
        self.strides: dict[int, int] = {p.pool_id: p.stride_bytes for p in pools}
        self.stream_id = stream_id

    @property
    def lease(self) -> Lease:
        return self._producer.lease

    @property
    def epoch(self) -> int:
        return self._producer.epoch

    @property
    def sorted_strides(self) -> tuple[int, ...]:
        return tuple(sorted(self.strides.values()))

    def lease_valid(self) -> bool:
        return self._client.lease_valid(self._producer.lease)

    def write(self, frame: AssembledFrame, pool_id: int) -> None:
        """§6.5 steps 8-10: in-progress word, payload, slot fields, committed word."""
        fields = frame.fields
        assert fields.tensor is not None  # header_problem accepted it
        self._producer._ring.write_frame(  # noqa: SLF001
            frame.seq, self._pools[pool_id], frame.payload, tensor=fields.tensor,
            timestamp_ns=fields.timestamp_ns, meta_version=fields.meta_version,
        )

    def close(self) -> None:
        self._producer.close()


__all__ = ["DestStream", "SourceStream", "driver_client"]
