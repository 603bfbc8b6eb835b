"""One publication's outgoing FIFO: encoded messages offered in order, control never dropped.

Only the gateway's poll thread touches a ``PublicationQueue``. The spec orders some replies
(revoke, then announce, then detach response), so a message that cannot be offered blocks
the ones behind it on the same publication. Two kinds of message wait here:

- **control** (revokes, attach/detach responses, ``ShmDriverShutdown``): retried in order
  until the publication takes it, however long that is. A client that never learns its
  lease ended, or never gets its answer, is worse than a late message. A publication only
  stays back-pressured while one of its subscribers is slow, and Aeron bounds that in time
  (a subscriber whose client stops is timed out by the media driver), so waiting ends. The
  memory it can take is bounded upstream: the gateway stops reading requests while this
  queue is above its high-water mark, so what waits is at most that mark plus one revoke per
  live lease. A long stall is logged (rate-limited) and counted, never silent.
- **soft state** (announces): periodic, so a newer one supersedes it. Dropped at once when
  nobody subscribes, or once it has waited longer than the soft deadline; every drop is
  counted and logged.

A retry happens on a later loop turn, never by spinning here: the subscriber we wait for
may be our own control subscription, drained by the same thread.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import pyaeron

from messages.events import COUNTER_PUBLISH_FAILED, COUNTER_PUBLISH_RETRIES

if TYPE_CHECKING:
    from actors.runtime.counters import Counters
    from actors.runtime.rate_limited_log import RateLimitedLog
    from messages.sbe import SbeMessage

_log = logging.getLogger(__name__)

COUNTER_SENT = "gateway.sent"  # + "." + message class name
COUNTER_STALLED = "gateway.publish_stalled"  # control messages found waiting past the stall mark
COUNTER_SOFT_DROPPED = "gateway.soft_dropped"  # announces dropped (by class and code below it)
DEFAULT_STALL_LOG_NS = 1_000_000_000  # a control message waiting this long is worth a log line


class Offerable(Protocol):
    """The part of an Aeron publication the queue uses."""

    def offer(self, data: bytes) -> object: ...


@dataclass(slots=True)
class _Pending:
    data: bytes
    message: SbeMessage  # kept for the log line if it is dropped (described lazily)
    soft: bool  # soft state (announces): may be dropped, control never is
    pushed_ns: int  # when it was queued: the soft deadline and the stall mark run from here
    stalled: bool = False  # already counted as stalled


class PublicationQueue:
    """FIFO of encoded messages for one publication; control waits, soft state may drop."""

    def __init__(
        self,
        label: str,
        publication: Offerable,
        *,
        soft_deadline_ns: int,
        counters: Counters,
        rate_log: RateLimitedLog,
        stall_log_ns: int = DEFAULT_STALL_LOG_NS,
    ) -> None:
        self.label = label
        self._publication = publication
        self._soft_deadline_ns = soft_deadline_ns
        self._stall_log_ns = stall_log_ns
        self._counters = counters
        self._rate_log = rate_log
        self._items: deque[_Pending] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def push(self, data: bytes, message: SbeMessage, *, soft: bool, now_ns: int) -> None:
        """Queue one encoded message behind the ones already waiting."""
        self._items.append(_Pending(data, message, soft, now_ns))

    def drain(self, now_ns: int) -> int:
        """Offer queued messages in order until one cannot go out; returns how many went.

        A refused soft message that may be dropped is dropped and the pass goes on, so one
        call clears every expired announce at the head. ``PublicationClosed`` and
        ``MaxPositionExceeded`` propagate: the publication is gone and the gateway treats
        that as fatal.
        """
        items, offer = self._items, self._publication.offer
        sent: Counter[str] = Counter()
        while items:
            item = items[0]
            try:
                result = offer(item.data)
            except (pyaeron.PublicationClosed, pyaeron.MaxPositionExceeded):
                self._count_sent(sent)
                raise
            except pyaeron.AeronError as exc:  # e.g. longer than max_message_length
                items.popleft()
                self._drop(item, f"offer failed: {exc}", "error")
                continue
            if result is True:
                items.popleft()
                sent[type(item.message).__name__] += 1
                continue
            if not self._refused(item, result, now_ns):
                break
        self._count_sent(sent)
        return sent.total()

    def _count_sent(self, sent: Counter[str]) -> None:
        for name, n in sent.items():
            self._counters.inc(f"{COUNTER_SENT}.{name}", n)

    def _refused(self, item: _Pending, result: object, now_ns: int) -> bool:
        """Handle a refused offer; True when the head was dropped and draining may go on."""
        code = _code_name(result)
        age_ns = now_ns - item.pushed_ns
        if item.soft and (result is pyaeron.NOT_CONNECTED or age_ns >= self._soft_deadline_ns):
            # Announces are periodic soft state: with nobody subscribed, or this late, waiting
            # would only delay the control messages behind it and the next announce.
            self._items.popleft()
            name = type(item.message).__name__
            self._counters.inc(COUNTER_SOFT_DROPPED)
            self._counters.inc(f"{COUNTER_SOFT_DROPPED}.{name}.{code}")
            # Nobody subscribed is the normal state of an announce stream with no consumer.
            level = logging.DEBUG if result is pyaeron.NOT_CONNECTED else logging.WARNING
            self._rate_log.log(
                level,
                f"soft:{self.label}:{code}",
                "dropped %s on the %s publication: %s after %.3g s queued (soft state)",
                name,
                self.label,
                code,
                age_ns / 1e9,
            )
            return True
        self._counters.inc(COUNTER_PUBLISH_RETRIES)
        if not item.stalled and age_ns >= self._stall_log_ns:
            item.stalled = True
            self._counters.inc(COUNTER_STALLED)
            self._rate_log.log(
                logging.WARNING,
                f"stall:{self.label}",
                "%s publication %s for %.3g s: %d messages waiting (none is dropped), head %s",
                self.label,
                code,
                age_ns / 1e9,
                len(self._items),
                _describe(item.message),
            )
        return False

    def _drop(self, item: _Pending, why: str, code: str) -> None:
        name = type(item.message).__name__
        self._counters.inc(COUNTER_PUBLISH_FAILED)
        self._counters.inc(f"{COUNTER_PUBLISH_FAILED}.{name}.{code}")
        self._rate_log.log(
            logging.WARNING,
            f"drop:{self.label}:{code}",
            "dropped %s on the %s publication (%s): %s",
            name,
            self.label,
            why,
            _describe(item.message),
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


def _describe(message: SbeMessage) -> str:
    """The identifying fields of a message, for the log line when it is dropped or stuck."""
    keys = ("correlation_id", "lease_id", "stream_id", "client_id", "epoch", "code", "reason")
    parts = [f"{k}={getattr(message, k)}" for k in keys if hasattr(message, k)]
    return f"{type(message).__name__}({', '.join(parts)})"
