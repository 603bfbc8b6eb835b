"""Actor messages: the events and commands that travel between actors, and their boundaries.

The SBE request messages decoded by the gateway (``ShmAttachRequest``, ``ShmDetachRequest``,
``ShmLeaseKeepalive``, ``ShmDriverShutdownRequest``, ``ConsumerHello``) are already frozen
values, so they are told to the DriverActor as they are instead of being copied into a parallel
set of event classes. This module holds everything else: timer events, commands from the
launcher, the status query and its answer, the lifecycle events published to the admin plane,
and the two protocols through which the actor system talks to the outside world.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from messages.control import Role, ShmLeaseKeepalive, ShutdownReason
    from messages.sbe import SbeMessage

# --------------------------------------------------------------------------------------------
# Timer events (TimerActor -> DriverActor). Each carries the clock reading at which it fired,
# so handlers never read a clock of their own and tests on a ManualClock are exact.


@dataclass(frozen=True, slots=True)
class AnnounceTimerFired:
    """The announce period elapsed: announce every provisioned stream."""

    now_ns: int


@dataclass(frozen=True, slots=True)
class LeaseCheckTimerFired:
    """The earliest lease deadline (armed by the driver on its clock) has passed: sweep."""

    now_ns: int


@dataclass(frozen=True, slots=True)
class ShutdownTimerFired:
    """The drain period armed by ``ArmShutdownTimer`` is over: publish ShmDriverShutdown."""

    now_ns: int


@dataclass(frozen=True, slots=True)
class ArmShutdownTimer:
    """Ask the TimerActor for one ``ShutdownTimerFired`` at ``deadline_ns``."""

    deadline_ns: int


# --------------------------------------------------------------------------------------------
# Gateway and launcher -> DriverActor.


@dataclass(frozen=True, slots=True)
class IntakeCaughtUp:
    """The gateway has read the control stream up to ``now_ns`` and told all of it first.

    Told only when the driver asked for it (``actors/runtime/intake.py``: a lease is due but the
    shared horizon could not yet prove its keepalive is not unread in the Aeron log). Mailbox
    order puts everything read before it ahead of it, so leases due before ``now_ns`` may
    expire when it arrives. Time is CLOCK_MONOTONIC, the driver clock's domain.
    """

    now_ns: int


@dataclass(frozen=True, slots=True)
class Keepalives:
    """The keepalives one poll of the control stream read, in arrival order, told as one
    message: at 10,000 leases a message per keepalive would be 10,000 envelopes, mailbox turns
    and HSM dispatches a second where one loop will do. The gateway tells anything else it
    reads after the keepalives read before it, so the order of requests is kept."""

    batch: tuple[ShmLeaseKeepalive, ...]


@dataclass(frozen=True, slots=True)
class AttachVersionUnsupported:
    """An attach request of a newer schema version arrived; it must be answered UNSUPPORTED."""

    correlation_id: int


@dataclass(frozen=True, slots=True)
class ShutdownRequested:
    """A local shutdown (signal or embedding code) that needs no token.

    ``skip_drain`` ends the drain at once (the spec allows a signal to shorten it); the driver
    still goes through Draining and publishes ShmDriverShutdown before Stopped.
    """

    reason: ShutdownReason
    error_message: str = ""
    skip_drain: bool = False


# --------------------------------------------------------------------------------------------
# Status (admin plane and tests ``ask`` the DriverActor; the only ask on any path).


@dataclass(frozen=True, slots=True)
class StatusQuery:
    """Ask the DriverActor for a ``DriverStatus`` snapshot."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamStatus:
    """One stream as the driver currently sees it."""

    stream_id: int
    name: str | None  # the [streams.<name>] table, None for a dynamic stream
    profile: str
    dynamic: bool
    state: str  # HSM path, e.g. "Stream.Ready"
    epoch: int  # 0 = never provisioned
    producer_lease_id: int | None
    producer_client_id: int | None
    consumer_lease_ids: tuple[int, ...]
    hugepages: bool
    header_uri: str | None
    pool_uris: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseStatus:
    """One active lease."""

    lease_id: int
    client_id: int
    role: Role
    stream_id: int
    node_id: int
    epoch: int
    state: str  # HSM path, e.g. "Lease.Active"
    expiry_ns: int  # driver CLOCK_MONOTONIC deadline


@dataclass(frozen=True, slots=True, kw_only=True)
class DriverStatus:
    """What the driver holds right now; counters are cumulative since start."""

    instance_id: str
    state: str  # HSM path, e.g. "Driver.Running.Draining"
    pid: int
    started_ns: int
    now_ns: int
    streams: tuple[StreamStatus, ...]
    leases: tuple[LeaseStatus, ...]
    counters: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))


# Counter names (flat, dotted). Producers of counters use these prefixes so the admin plane
# can group them: the DriverActor counts protocol outcomes, the gateway counts transport ones.
COUNTER_ATTACH_OK: Final = "attach.ok"
COUNTER_ATTACH_REJECTED: Final = "attach.rejected"  # + "." + response code name, e.g. ".REJECTED"
COUNTER_ATTACH_REJECTED_REASON: Final = "attach.rejected_reason"  # + "." + error text
COUNTER_KEEPALIVE_ACCEPTED: Final = "keepalive.accepted"
COUNTER_KEEPALIVE_IGNORED: Final = "keepalive.ignored"
COUNTER_DETACH_OK: Final = "detach.ok"
COUNTER_DETACH_REJECTED: Final = "detach.rejected"
COUNTER_REVOKE: Final = "revoke"  # + "." + reason name: DETACHED, EXPIRED, REVOKED
COUNTER_EXPIRY_DEFERRED: Final = "expiry.deferred"  # sweeps that spared a due lease: intake lag
COUNTER_EPOCH_BUMPS: Final = "epoch.bumps"
COUNTER_PROVISION_FAILED: Final = "provision.failed"
COUNTER_ANNOUNCES: Final = "announce.sent"
COUNTER_HELLO_ANSWERED: Final = "hello.answered"
COUNTER_SHUTDOWN_REQUEST_REJECTED: Final = "shutdown_request.rejected"
COUNTER_CHILD_FAILED: Final = "supervision.child_failed"
COUNTER_DECODE_ERRORS: Final = "gateway.decode_errors"  # + "." + error class name
COUNTER_IGNORED: Final = "gateway.ignored"  # own output, unknown templates, other schemas
COUNTER_PUBLISH_FAILED: Final = "gateway.publish_failed"
COUNTER_PUBLISH_RETRIES: Final = "gateway.publish_retries"
COUNTER_HANDLER_ERRORS: Final = "gateway.handler_errors"


# --------------------------------------------------------------------------------------------
# Lifecycle events for the admin plane's PUB socket.

EVENT_ATTACH: Final = "attach"
EVENT_ATTACH_REJECTED: Final = "attach_rejected"
EVENT_DETACH: Final = "detach"
EVENT_REVOKE: Final = "revoke"
EVENT_EPOCH_BUMP: Final = "epoch_bump"
EVENT_ANNOUNCE: Final = "announce"
EVENT_DRAINING: Final = "draining"
EVENT_SHUTDOWN: Final = "shutdown"
EVENT_CHILD_FAILED: Final = "child_failed"

EventValue = str | int | bool | None


@dataclass(frozen=True, slots=True)
class DriverEvent:
    """One lifecycle event; ``fields`` holds JSON-ready scalars (lease_id, stream_id, ...)."""

    kind: str
    timestamp_ns: int
    fields: Mapping[str, EventValue] = field(default_factory=lambda: MappingProxyType({}))


# --------------------------------------------------------------------------------------------
# Boundaries of the actor system.


@runtime_checkable
class Outbox(Protocol):
    """Where actors put outgoing SBE messages; the gateway in production, a recorder in tests.

    ``send`` must be callable from any actor thread, must not block, and must keep the order
    of calls (the spec orders revoke, announce and detach response).
    """

    def send(self, message: SbeMessage) -> None: ...

    def send_all(self, messages: Iterable[SbeMessage]) -> None:
        """``send`` each message in order (one call for what one step decided)."""
        ...


@runtime_checkable
class EventSink(Protocol):
    """Where the driver reports lifecycle events (the AdminActor); must not block."""

    def emit(self, event: DriverEvent) -> None: ...


class NullEventSink:
    """An EventSink that drops everything, for systems started without an admin plane."""

    def emit(self, event: DriverEvent) -> None:
        """Drop the event."""
