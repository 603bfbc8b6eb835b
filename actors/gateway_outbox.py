"""One publication's outgoing FIFO: encoded messages offered in order, each with a deadline.

Only the gateway's poll thread touches a ``PublicationQueue``. The spec orders some replies
(revoke, then announce, then detach response), so a message that cannot be offered blocks
the ones behind it on the same publication; within its deadline it is never skipped. The
deadline is the longest a message may spend queued, counted from ``push``: when a
subscriber never reads, everything older than the deadline is dropped in one pass, so the
queue holds at most what was pushed within the last deadline and a fresh reply never waits
behind a backlog of stale ones. A retry happens on a later loop turn, never by spinning
here: the subscriber we wait for may be our own control subscription, drained by the same
thread.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import pyaeron

from messages.events import COUNTER_PUBLISH_FAILED, COUNTER_PUBLISH_RETRIES

if TYPE_CHECKING:
    from actors.gateway_counters import Counters
    from actors.rate_limited_log import RateLimitedLog

_log = logging.getLogger(__name__)

COUNTER_SENT = "gateway.sent"  # + "." + message class name


class Offerable(Protocol):
    """The part of an Aeron publication the queue uses."""

    def offer(self, data: bytes) -> object: ...


@dataclass(slots=True)
class _Pending:
    data: bytes
    name: str  # message class name, for logs and counters
    detail: str  # short description of what would be lost
    soft: bool  # soft state (announces): dropped at once when nobody listens
    pushed_ns: int  # when it was queued: its deadline runs from here


class PublicationQueue:
    """FIFO of encoded messages for one publication; none waits longer than the deadline."""

    def __init__(
        self,
        label: str,
        publication: Offerable,
        *,
        deadline_ns: int,
        counters: Counters,
        rate_log: RateLimitedLog,
    ) -> None:
        self.label = label
        self._publication = publication
        self._deadline_ns = deadline_ns
        self._counters = counters
        self._rate_log = rate_log
        self._items: deque[_Pending] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def push(self, data: bytes, *, name: str, detail: str, soft: bool, now_ns: int) -> None:
        """Queue one encoded message behind the ones already waiting; its deadline starts now."""
        self._items.append(_Pending(data, name, detail, soft, now_ns))

    def drain(self, now_ns: int) -> int:
        """Offer queued messages in order until one within its deadline cannot go out.

        Returns how many were sent. A refused message past its deadline is dropped and the
        pass goes on with the next, so one call clears every expired message.
        ``PublicationClosed`` and ``MaxPositionExceeded`` propagate: the publication is
        gone and the gateway treats that as fatal.
        """
        sent = 0
        while self._items:
            item = self._items[0]
            try:
                result = self._publication.offer(item.data)
            except (pyaeron.PublicationClosed, pyaeron.MaxPositionExceeded):
                raise
            except pyaeron.AeronError as exc:  # e.g. longer than max_message_length
                self._items.popleft()
                self._drop(item, f"offer failed: {exc}", "error")
                continue
            if result is True:
                self._items.popleft()
                self._counters.inc(f"{COUNTER_SENT}.{item.name}")
                sent += 1
                continue
            if not self._retry_or_drop(item, result, now_ns):
                break
        return sent

    def _retry_or_drop(self, item: _Pending, result: object, now_ns: int) -> bool:
        """Handle a refused offer; True when the head was dropped and draining may go on."""
        code = _code_name(result)
        if item.soft and result is pyaeron.NOT_CONNECTED:
            # Nobody subscribes to the announce stream: announces are periodic soft state,
            # so waiting would only delay the next one.
            self._items.popleft()
            self._counters.inc(f"{COUNTER_PUBLISH_FAILED}.{item.name}.{code}")
            return True
        age_ns = now_ns - item.pushed_ns
        if age_ns >= self._deadline_ns:
            self._items.popleft()
            limit = self._deadline_ns / 1e9
            self._drop(
                item, f"still {code} after {age_ns / 1e9:.3g} s queued, limit {limit:.3g} s", code
            )
            return True
        self._counters.inc(COUNTER_PUBLISH_RETRIES)
        return False

    def _drop(self, item: _Pending, why: str, code: str) -> None:
        self._counters.inc(COUNTER_PUBLISH_FAILED)
        self._counters.inc(f"{COUNTER_PUBLISH_FAILED}.{item.name}.{code}")
        self._rate_log.log(
            logging.WARNING,
            f"drop:{self.label}:{code}",
            "dropped %s on the %s publication (%s): %s",
            item.name,
            self.label,
            why,
            item.detail,
        )

    def drop_all(self, why: str) -> int:
        """Give up on everything queued (close deadline passed); returns how many were lost."""
        lost = len(self._items)
        while self._items:
            self._drop(self._items.popleft(), why, "closed")
        return lost


def _code_name(result: object) -> str:
    if result is pyaeron.NOT_CONNECTED:
        return "NOT_CONNECTED"
    if result is pyaeron.BACK_PRESSURED:
        return "BACK_PRESSURED"
    if result is pyaeron.ADMIN_ACTION:
        return "ADMIN_ACTION"
    return str(result)
