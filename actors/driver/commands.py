"""Internal messages between the DriverActor and its StreamActors and LeaseActors.

The public actor messages (timer events, status, shutdown, the boundaries) are in
``messages/events.py``; these never leave the actor system. Commands are imperative, replies
and reports past tense.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pykka import ActorRef

    from messages.control import LeaseRevokeReason, PayloadPool, Role


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingAttach:
    """An attach that passed every check and waits for its stream to be ready."""

    correlation_id: int
    lease_id: int
    node_id: int
    client_id: int
    role: Role
    stream_id: int


# --------------------------------------------------------------------------------------------
# DriverActor -> StreamActor


@dataclass(frozen=True, slots=True)
class ProducerAttach:
    """Provision a fresh epoch for a new producer (always exactly one bump, A-6)."""

    attach: PendingAttach
    now_ns: int
    referenced_epochs: frozenset[int]


@dataclass(frozen=True, slots=True)
class ConsumerAttach:
    """Provision the stream's first epoch for a consumer (the Stream HSM asks only then)."""

    attach: PendingAttach
    now_ns: int
    referenced_epochs: frozenset[int]


@dataclass(frozen=True, slots=True)
class ProducerLeaseLost:
    """The producer lease ended (its revoke is out): bump, re-provision, GC."""

    lease_id: int
    now_ns: int
    referenced_epochs: frozenset[int]


@dataclass(frozen=True, slots=True)
class Reprovision:
    """A restarted stream (supervision) starts a fresh epoch."""

    now_ns: int
    referenced_epochs: frozenset[int]


type ProvisionCommand = ProducerAttach | ConsumerAttach | ProducerLeaseLost | Reprovision


@dataclass(frozen=True, slots=True)
class DiscardEpoch:
    """The driver stopped before announcing ``epoch``: remove it (nobody will use it)."""

    epoch: int


@dataclass(frozen=True, slots=True)
class CleanupEpoch:
    """Shutdown with ``cleanup_shm_on_exit``: delete the current epoch directory (ask)."""


# --------------------------------------------------------------------------------------------
# StreamActor -> DriverActor


@dataclass(frozen=True, slots=True, kw_only=True)
class EpochInfo:
    """What attach responses and announces need to know about a provisioned epoch."""

    epoch: int
    header_nslots: int
    header_uri: str
    pools: tuple[PayloadPool, ...]
    hugepages: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamReady:
    """A new epoch was provisioned for ``attach``."""

    stream_id: int
    info: EpochInfo
    attach: PendingAttach


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvisionFailed:
    """Provisioning for ``attach`` failed; ``detail`` is the spec's ``<detail>``."""

    stream_id: int
    detail: str
    attach: PendingAttach


@dataclass(frozen=True, slots=True, kw_only=True)
class EpochProvisioned:
    """A new epoch after a producer loss or a restart."""

    stream_id: int
    info: EpochInfo


@dataclass(frozen=True, slots=True, kw_only=True)
class EpochProvisionFailed:
    """Re-provisioning after a producer loss or a restart failed; the old epoch stays."""

    stream_id: int
    detail: str


# --------------------------------------------------------------------------------------------
# DriverActor <-> LeaseActor


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantLease:
    """The attach succeeded: UNATTACHED -> ACTIVE (the deadline is the driver's lease table's)."""

    now_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EndLease:
    """The driver decided the lease ends (detach, expiry, administrative revoke)."""

    reason: LeaseRevokeReason
    now_ns: int


# --------------------------------------------------------------------------------------------
# Supervision and wiring


class ChildKind(StrEnum):
    """The two kinds of child the driver supervises (the value names them in events)."""

    LEASE = "lease"
    STREAM = "stream"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildFailed:
    """A child's handler raised; ``key`` is the lease id or stream id, ``urn`` the actor."""

    kind: ChildKind
    key: int
    urn: str
    detail: str


@dataclass(frozen=True, slots=True)
class IntensityExceeded:
    """Too many child failures in the window (``supervision.py``): shut down, ERROR."""

    message: str


@dataclass(frozen=True, slots=True)
class StopChildren:
    """Shutdown, asked by ``DriverSystem.stop`` before it stops the driver: close the link,
    stop every child and wait for them, so the children are gone before their parent."""


@dataclass(frozen=True, slots=True)
class UseTimer:
    """Wiring: the TimerActor that takes ``ArmShutdownTimer`` (told once by the system)."""

    timer: ActorRef[Any]
