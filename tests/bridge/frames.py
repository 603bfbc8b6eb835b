"""Hand-built frames and chunks for the bridge tests (the §4.7 encoder, never the sender)."""

from __future__ import annotations

import dataclasses

import messages
from messages import BridgeFrameChunk, PayloadPool, ShmPoolAnnounce
from shm.slot_layout import TensorDescriptor, pack_slot_body
from tensorpool_bridge.chunking import split_frame

STREAM = 20000
EPOCH = 1700000000123


def slot(seq: int, length: int, *, pool_id: int = 0, meta_version: int = 2,
         timestamp_ns: int = 1700000000999) -> bytes:
    """A committed 256-byte source slot for a uint8 vector of ``length`` bytes.

    ``pool_id`` 0 picks the pool of ``announce()`` that fits (1: 4096 bytes, else 2).
    """
    if pool_id == 0:
        pool_id = 1 if length <= 4096 else 2
    body = pack_slot_body(
        values_len_bytes=length, payload_slot=seq & 7, pool_id=pool_id,
        timestamp_ns=timestamp_ns, meta_version=meta_version,
        tensor=TensorDescriptor(dtype=1, major_order=1, dims=(length,), strides=(1,)),
    )
    return ((seq << 1) | 1).to_bytes(8, "little") + body


def payload(length: int, salt: int = 0) -> bytes:
    return bytes((i * 7 + salt) & 0xFF for i in range(length))


def chunks(seq: int, data: bytes, *, epoch: int = EPOCH, chunk_bytes: int = 1024,
           trace_id: int = 0, integrity: bool = False, header: bytes | None = None,
           stream_id: int = STREAM) -> list[BridgeFrameChunk]:
    """The decoded chunks of one frame as a correct sender splits it."""
    head = slot(seq, len(data)) if header is None else header
    out = []
    for wire in split_frame(stream_id=stream_id, epoch=epoch, seq=seq, trace_id=trace_id,
                            header=head, payload=data, chunk_bytes=chunk_bytes,
                            integrity=integrity):
        chunk = messages.decode(wire)
        assert isinstance(chunk, BridgeFrameChunk)
        out.append(chunk)
    return out


def announce(epoch: int = EPOCH, *, strides: tuple[int, ...] = (4096, 1 << 20),
             stream_id: int = STREAM, nslots: int = 64) -> ShmPoolAnnounce:
    pools = tuple(
        PayloadPool(pool_id=i + 1, pool_nslots=nslots, stride_bytes=s,
                    region_uri=f"shm:file?path=/dev/shm/x/{i + 1}")
        for i, s in enumerate(strides)
    )
    return ShmPoolAnnounce(
        stream_id=stream_id, producer_id=7, epoch=epoch, announce_timestamp_ns=1,
        announce_clock_domain=messages.ClockDomain.MONOTONIC, layout_version=1,
        header_nslots=nslots, header_slot_bytes=256, payload_pools=pools,
        header_region_uri="shm:file?path=/dev/shm/x/h",
    )


def replace(chunk: BridgeFrameChunk, **changes: object) -> BridgeFrameChunk:
    return dataclasses.replace(chunk, **changes)  # type: ignore[arg-type]
