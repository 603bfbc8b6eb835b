"""Per-consumer descriptor/control stream assignments (driver-behaviour.md §12).

A consumer may ask, through ``ConsumerHello``, for its own descriptor and/or control stream.
The driver picks the ids from ``driver.descriptor_stream_id_range`` /
``driver.control_stream_id_range``, keeps them while the consumer's lease lives, and repeats
the same answer for every periodic hello.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Final

from actors.driver.stream_ids import RangeAllocator

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tensorpool_config.model import IdRange

_U32_NULL: Final = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class HelloRequest:
    """The per-consumer part of a ConsumerHello, already decoded."""

    descriptor_channel: str
    descriptor_stream_id: int | None
    control_channel: str
    control_stream_id: int | None


@dataclass(frozen=True, slots=True)
class HelloAnswer:
    """What the ConsumerConfig carries (ids 0 and empty channels = declined)."""

    descriptor_stream_id: int
    descriptor_channel: str
    control_stream_id: int
    control_channel: str


class HelloVerdict(Enum):
    """How a hello is classified before any lease lookup (§12 steps 2-3)."""

    NOTHING = "nothing"
    INVALID = "invalid"
    REQUEST = "request"


def _has_id(stream_id: int | None) -> bool:
    return stream_id is not None and stream_id not in (0, _U32_NULL)


def classify(req: HelloRequest) -> HelloVerdict:
    """``nothing`` (ignore), ``invalid`` (answer all-declined) or ``request``."""
    invalid = (req.descriptor_channel and not _has_id(req.descriptor_stream_id)) or (
        req.control_channel and not _has_id(req.control_stream_id)
    )
    if invalid:
        return HelloVerdict.INVALID
    present = (req.descriptor_channel and _has_id(req.descriptor_stream_id)) or (
        req.control_channel and _has_id(req.control_stream_id)
    )
    return HelloVerdict.REQUEST if present else HelloVerdict.NOTHING


DECLINED: Final = HelloAnswer(0, "", 0, "")


class _Kind:
    """Assignments of one kind (descriptor or control)."""

    __slots__ = ("allocator", "by_consumer", "by_id")

    def __init__(self, ranges: Sequence[IdRange]) -> None:
        self.by_consumer: dict[int, int] = {}
        self.by_id: dict[int, int] = {}
        self.allocator = RangeAllocator(ranges, self.by_id.__contains__)

    def assign(self, consumer_id: int) -> int:
        existing = self.by_consumer.get(consumer_id)
        if existing is not None:
            return existing
        value = self.allocator.candidate(used_count=len(self.by_id))
        if value is None:
            return 0
        self.allocator.take(value)
        self.by_consumer[consumer_id] = value
        self.by_id[value] = consumer_id
        return value

    def release(self, consumer_id: int) -> None:
        value = self.by_consumer.pop(consumer_id, None)
        if value is not None:
            self.by_id.pop(value, None)


class ConsumerStreams:
    """Both kinds of per-consumer assignment, keyed by consumer id (= the lease's client id)."""

    __slots__ = ("_control", "_descriptor")

    def __init__(
        self, descriptor_ranges: Sequence[IdRange], control_ranges: Sequence[IdRange]
    ) -> None:
        self._descriptor = _Kind(descriptor_ranges)
        self._control = _Kind(control_ranges)

    def answer(self, consumer_id: int, req: HelloRequest) -> HelloAnswer:
        """Assign (or reuse) ids for what ``req`` asks; call only for a ``request`` verdict."""
        descriptor_id = descriptor_channel = control_id = control_channel = None
        if req.descriptor_channel and _has_id(req.descriptor_stream_id):
            descriptor_id = self._descriptor.assign(consumer_id)
            descriptor_channel = req.descriptor_channel if descriptor_id else ""
        if req.control_channel and _has_id(req.control_stream_id):
            control_id = self._control.assign(consumer_id)
            control_channel = req.control_channel if control_id else ""
        return HelloAnswer(
            descriptor_stream_id=descriptor_id or 0,
            descriptor_channel=descriptor_channel or "",
            control_stream_id=control_id or 0,
            control_channel=control_channel or "",
        )

    def release(self, consumer_id: int) -> None:
        """The consumer's lease ended: its ids go back to the ranges."""
        self._descriptor.release(consumer_id)
        self._control.release(consumer_id)

    def assigned(self, consumer_id: int) -> tuple[int | None, int | None]:
        """(descriptor id, control id) held by ``consumer_id``."""
        return (
            self._descriptor.by_consumer.get(consumer_id),
            self._control.by_consumer.get(consumer_id),
        )
