"""Header ring and payload pool views over mapped regions, with the seqlock frame protocol.

Views export the mapping's buffer; ``release()`` drops them so that the owning ``mmap`` can be
closed (``mmap.close()`` raises BufferError while any view is alive).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np

from shm import seqlock
from shm.seqlock import ReadStatus
from shm.slot_layout import (
    SEQ_COMMIT_BYTES,
    SLOT_DTYPE,
    SlotFields,
    TensorDescriptor,
    invalid_reason,
    pack_slot_body,
    unpack_slot_body,
)
from shm.superblock import HEADER_SLOT_BYTES, SUPERBLOCK_SIZE, is_power_of_two

if TYPE_CHECKING:
    from collections.abc import Buffer, Mapping

    import numpy.typing as npt

_WORD: Final = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    """A frame the reader accepted: private copies, safe to keep after the slot is reused."""

    seq: int
    slot_index: int
    pool_id: int
    timestamp_ns: int
    meta_version: int
    tensor: TensorDescriptor
    payload: bytes


class PayloadPoolView:
    """Fixed-stride payload slots of one pool region: ``slot(i)`` is a zero-copy uint8 view."""

    def __init__(self, region: Buffer, *, pool_id: int, nslots: int, stride_bytes: int) -> None:
        self._mv: memoryview | None = memoryview(region).cast("B")
        if len(self._mv) < SUPERBLOCK_SIZE + nslots * stride_bytes:
            self.release()
            raise ValueError("pool region smaller than 64 + nslots * stride_bytes")
        self.pool_id = pool_id
        self.nslots = nslots
        self.stride_bytes = stride_bytes
        self.readonly = self._mv.readonly
        self._bytes: npt.NDArray[np.uint8] | None = np.frombuffer(
            self._mv, dtype=np.uint8, count=nslots * stride_bytes, offset=SUPERBLOCK_SIZE
        ).reshape(nslots, stride_bytes)

    @property
    def slots(self) -> npt.NDArray[np.uint8]:
        """Every payload slot as one ``(nslots, stride_bytes)`` uint8 view."""
        return self._array()

    @property
    def raw(self) -> memoryview:
        """The whole region as bytes; slot ``i`` starts at ``offset(i)``. Slicing it and
        assigning between memoryviews is a plain memcpy, cheaper than numpy for small frames."""
        if self._mv is None:
            raise ValueError("payload pool view was released")
        return self._mv

    def offset(self, index: int) -> int:
        """Where payload slot ``index`` starts in ``raw``."""
        return SUPERBLOCK_SIZE + index * self.stride_bytes

    def slot(self, index: int) -> npt.NDArray[np.uint8]:
        """The ``stride_bytes`` of payload slot ``index`` (writable when the mapping is)."""
        row: npt.NDArray[np.uint8] = self._array()[index]
        return row

    def copy_out(self, index: int, length: int) -> bytes:
        """A private copy of the first ``length`` bytes of slot ``index``."""
        return self._array()[index, :length].tobytes()

    def check_fits(self, payload: Buffer) -> None:
        """ValueError when ``payload`` is longer than one slot."""
        size = memoryview(payload).nbytes
        if size > self.stride_bytes:
            raise ValueError(f"payload of {size} bytes exceeds stride {self.stride_bytes}")

    def write(self, index: int, payload: Buffer) -> int:
        """Copy ``payload`` into slot ``index``; returns its length."""
        self.check_fits(payload)
        data = np.frombuffer(payload, dtype=np.uint8)
        self._array()[index, : data.size] = data
        return int(data.size)

    def release(self) -> None:
        """Drop the numpy view and the memoryview (idempotent)."""
        self._bytes = None
        if self._mv is not None:
            self._mv.release()
            self._mv = None

    def _array(self) -> npt.NDArray[np.uint8]:
        if self._bytes is None:
            raise ValueError("payload pool view was released")
        return self._bytes


class HeaderRing:
    """The slots of a header ring region, written and read with the seqlock protocol (§2, §4)."""

    def __init__(self, region: Buffer, *, nslots: int) -> None:
        if not is_power_of_two(nslots):
            raise ValueError(f"nslots must be a power of two, got {nslots}")
        self._mv: memoryview | None = memoryview(region).cast("B")
        if len(self._mv) < SUPERBLOCK_SIZE + nslots * HEADER_SLOT_BYTES:
            self.release()
            raise ValueError("header region smaller than 64 + nslots * 256")
        self.nslots = nslots
        self._mask = nslots - 1
        self._words: memoryview | None = self._mv[
            : SUPERBLOCK_SIZE + nslots * HEADER_SLOT_BYTES
        ].cast("Q")
        self._slots: npt.NDArray[np.void] | None = np.frombuffer(
            self._mv, dtype=SLOT_DTYPE, count=nslots, offset=SUPERBLOCK_SIZE
        )

    @property
    def slots(self) -> npt.NDArray[np.void]:
        """Zero-copy structured view of every slot (for inspection; writers use the methods)."""
        if self._slots is None:
            raise ValueError("header ring was released")
        return self._slots

    @property
    def raw(self) -> memoryview:
        """The whole region as bytes (the data-plane fast paths write and read through it)."""
        return self._view()

    @property
    def words(self) -> memoryview:
        """The region as little-endian uint64 words; ``seq_word_index`` locates a seqCommit."""
        return self._view_words()

    def slot_index(self, seq: int) -> int:
        """``seq & (nslots - 1)``."""
        return seq & self._mask

    def seq_word_index(self, slot_index: int) -> int:
        """Index of a slot's seqCommit in the ``'Q'`` view of the region."""
        return (SUPERBLOCK_SIZE + slot_index * HEADER_SLOT_BYTES) // _WORD

    def load_seq_commit(self, slot_index: int) -> int:
        """The current seqCommit word of a slot."""
        return seqlock.load(self._view_words(), self.seq_word_index(slot_index))

    def begin_write(self, seq: int) -> int:
        """Writer step 1 for ``seq``; returns the slot index whose payload slot to fill."""
        index = self.slot_index(seq)
        seqlock.begin_write(self._view_words(), self.seq_word_index(index), seq)
        return index

    def end_write(
        self, seq: int, *, pool_id: int, values_len_bytes: int, tensor: TensorDescriptor,
        timestamp_ns: int, meta_version: int,
    ) -> None:
        """Writer steps 3 and 4: overwrite every slot field, then store the committed word."""
        index = self.slot_index(seq)
        body = pack_slot_body(
            values_len_bytes=values_len_bytes, payload_slot=index, pool_id=pool_id,
            timestamp_ns=timestamp_ns, meta_version=meta_version, tensor=tensor,
        )
        start = SUPERBLOCK_SIZE + index * HEADER_SLOT_BYTES + SEQ_COMMIT_BYTES
        self._view()[start : start + len(body)] = body
        seqlock.end_write(self._view_words(), self.seq_word_index(index), seq)

    def write_frame(
        self, seq: int, pool: PayloadPoolView, payload: Buffer, *, tensor: TensorDescriptor,
        timestamp_ns: int, meta_version: int,
    ) -> int:
        """The whole writer protocol for one frame; returns the slot index used."""
        if pool.nslots != self.nslots:
            raise ValueError("pool and header ring must have the same number of slots")
        pool.check_fits(payload)  # before step 1: a refused frame leaves the slot as it was
        index = self.begin_write(seq)
        length = pool.write(index, payload)
        self.end_write(
            seq, pool_id=pool.pool_id, values_len_bytes=length, tensor=tensor,
            timestamp_ns=timestamp_ns, meta_version=meta_version,
        )
        return index

    def read_frame(self, seq: int, pools: Mapping[int, PayloadPoolView]) -> Frame | ReadStatus:
        """The reader protocol for ``seq``: a Frame, or why it was dropped. Never waits."""
        index = self.slot_index(seq)
        start = SUPERBLOCK_SIZE + index * HEADER_SLOT_BYTES + SEQ_COMMIT_BYTES
        view = self._view()

        def copy() -> tuple[SlotFields, bytes]:
            # unpack_slot_body copies the bytes out of the mapping: the fields are private.
            fields = unpack_slot_body(view[start : start + HEADER_SLOT_BYTES - SEQ_COMMIT_BYTES])
            pool = pools.get(fields.pool_id)
            if pool is None or index >= pool.nslots:
                return fields, b""
            length = min(fields.values_len_bytes, pool.stride_bytes)
            return fields, pool.copy_out(index, length)

        status, snapshot = seqlock.read(self._view_words(), self.seq_word_index(index), seq, copy)
        if snapshot is None:
            return status
        fields, payload = snapshot
        pool = pools.get(fields.pool_id)
        if pool is None:
            return ReadStatus.INVALID
        if invalid_reason(fields, index, pool.nslots, pool.stride_bytes) is not None:
            return ReadStatus.INVALID
        assert fields.tensor is not None
        return Frame(
            seq=seq, slot_index=index, pool_id=fields.pool_id, timestamp_ns=fields.timestamp_ns,
            meta_version=fields.meta_version, tensor=fields.tensor, payload=payload,
        )

    def release(self) -> None:
        """Drop every view of the region (idempotent) so its mmap can be closed."""
        self._slots = None
        if self._words is not None:
            self._words.release()
            self._words = None
        if self._mv is not None:
            self._mv.release()
            self._mv = None

    def _view(self) -> memoryview:
        if self._mv is None:
            raise ValueError("header ring was released")
        return self._mv

    def _view_words(self) -> memoryview:
        if self._words is None:
            raise ValueError("header ring was released")
        return self._words
