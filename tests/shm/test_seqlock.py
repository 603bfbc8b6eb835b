"""The seqlock word and the reader's accept rule (shm-layout.md §4)."""

from __future__ import annotations

import pytest

from shm import seqlock
from shm.seqlock import ReadStatus


def _words(count: int = 4) -> memoryview:
    return memoryview(bytearray(8 * count)).cast("Q")


def test_words_encode_seq_and_committed_bit() -> None:
    assert seqlock.in_progress_word(5) == 10
    assert seqlock.committed_word(5) == 11
    assert seqlock.is_committed(11)
    assert not seqlock.is_committed(10)
    assert seqlock.word_seq(11) == seqlock.word_seq(10) == 5


def test_largest_sequence_fits_and_larger_is_refused() -> None:
    assert seqlock.committed_word(seqlock.MAX_SEQ) == (1 << 64) - 1
    with pytest.raises(ValueError, match="seq"):
        seqlock.in_progress_word(seqlock.MAX_SEQ + 1)
    with pytest.raises(ValueError, match="seq"):
        seqlock.committed_word(-1)


def test_writer_stores_in_progress_then_committed_little_endian() -> None:
    raw = bytearray(16)
    words = memoryview(raw).cast("Q")
    seqlock.begin_write(words, 1, 5)
    assert raw[8:16] == (10).to_bytes(8, "little")
    seqlock.end_write(words, 1, 5)
    assert raw[8:16] == (11).to_bytes(8, "little")
    assert seqlock.load(words, 1) == 11


def test_accepts_only_unchanged_committed_words_for_the_wanted_seq() -> None:
    assert seqlock.accepts(11, 11, 5)
    assert not seqlock.accepts(10, 10, 5)  # in progress
    assert not seqlock.accepts(11, 13, 5)  # changed
    assert not seqlock.accepts(13, 13, 5)  # another frame
    assert not seqlock.accepts(11, 11, 6)


def test_read_accepts_a_committed_slot_and_returns_the_copy() -> None:
    words = _words()
    seqlock.end_write(words, 2, 7)
    assert seqlock.read(words, 2, 7, lambda: "copy") == (ReadStatus.ACCEPTED, "copy")


def test_read_drops_an_in_progress_slot_without_copying() -> None:
    words = _words()
    seqlock.begin_write(words, 0, 7)
    copied: list[int] = []
    assert seqlock.read(words, 0, 7, lambda: copied.append(1)) == (ReadStatus.NOT_COMMITTED, None)
    assert copied == []


def test_read_drops_a_slot_holding_another_frame() -> None:
    words = _words()
    seqlock.end_write(words, 0, 7 + 4)
    assert seqlock.read(words, 0, 7, lambda: "x") == (ReadStatus.OTHER_SEQ, None)


def test_read_drops_when_the_writer_starts_during_the_copy() -> None:
    words = _words()
    seqlock.end_write(words, 0, 7)

    def copy() -> str:
        seqlock.begin_write(words, 0, 11)
        return "torn"

    assert seqlock.read(words, 0, 7, copy) == (ReadStatus.TORN, None)


def test_read_drops_when_a_whole_rewrite_of_the_same_seq_overlaps_the_copy() -> None:
    """A rewrite that ends committed for another seq is caught by the second load."""
    words = _words()
    seqlock.end_write(words, 0, 7)

    def copy() -> str:
        seqlock.begin_write(words, 0, 7 + 4)
        seqlock.end_write(words, 0, 7 + 4)
        return "torn"

    assert seqlock.read(words, 0, 7, copy) == (ReadStatus.TORN, None)
