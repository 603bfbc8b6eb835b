"""The seqlock word of a header slot: ``seqCommit = (seq << 1) | committed`` (shm-layout.md §4).

Words are read and written through a ``memoryview`` cast to ``'Q'`` over the mapping, which
CPython performs as one aligned 8-byte access on 64-bit CPUs (the spec's Python note). The
writer stores "in progress" before touching the slot and "committed" after; the reader copies
between two loads and accepts only an unchanged, committed word for the sequence it wanted, so
a rewrite that overlaps the copy is always detected, never accepted.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

COMMITTED_BIT: Final = 1
MAX_SEQ: Final = (1 << 63) - 1
"""The largest sequence whose shifted value fits the 64-bit word."""


class ReadStatus(enum.Enum):
    """Why a read was accepted or dropped (consumers count the drops as late/gap)."""

    ACCEPTED = "accepted"
    NOT_COMMITTED = "not_committed"  # LSB 0 on the first load: a write is in progress
    OTHER_SEQ = "other_seq"  # the slot holds another frame (overwritten: late, or not yet)
    TORN = "torn"  # the word changed while copying
    INVALID = "invalid"  # copied header failed validation (set by the ring, not here)


def in_progress_word(seq: int) -> int:
    """The word the writer stores before writing a slot."""
    _check_seq(seq)
    return seq << 1


def committed_word(seq: int) -> int:
    """The word the writer stores once the slot and payload are complete."""
    _check_seq(seq)
    return (seq << 1) | COMMITTED_BIT


def is_committed(word: int) -> bool:
    """LSB set: the slot holds a complete frame."""
    return bool(word & COMMITTED_BIT)


def word_seq(word: int) -> int:
    """The frame sequence a word refers to."""
    return word >> 1


def load(words: memoryview, index: int) -> int:
    """One 8-byte load of word ``index`` of a ``'Q'`` view."""
    return int(words[index])


def begin_write(words: memoryview, index: int, seq: int) -> None:
    """Writer step 1: mark the slot in progress for ``seq``."""
    words[index] = in_progress_word(seq)


def end_write(words: memoryview, index: int, seq: int) -> None:
    """Writer step 4: publish the slot as committed for ``seq``."""
    words[index] = committed_word(seq)


def accepts(first: int, second: int, seq: int) -> bool:
    """The reader's rule: unchanged across the copy, committed, and for the wanted ``seq``."""
    return first == second and is_committed(second) and word_seq(second) == seq


def read[T](
    words: memoryview, index: int, seq: int, copy: Callable[[], T]
) -> tuple[ReadStatus, T | None]:
    """Reader steps 2, 3 and 5: load, copy out with ``copy()``, reload; never waits.

    ``copy`` must return private copies (bytes, not views into the mapping): the result is
    only trustworthy because the word did not change while it ran.
    """
    first = load(words, index)
    if not is_committed(first):
        return ReadStatus.NOT_COMMITTED, None
    if word_seq(first) != seq:
        return ReadStatus.OTHER_SEQ, None
    snapshot = copy()
    second = load(words, index)
    if not accepts(first, second, seq):
        return ReadStatus.TORN, None
    return ReadStatus.ACCEPTED, snapshot


def _check_seq(seq: int) -> None:
    if not 0 <= seq <= MAX_SEQ:
        raise ValueError(f"seq {seq} outside 0..2**63-1")
