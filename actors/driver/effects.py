"""Effects of the Driver HSM: what the DriverActor must do after a decision (its only I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from actors.runtime.hsm import effect_check

if TYPE_CHECKING:
    from collections.abc import Callable

    from actors.driver.commands import (
        DiscardEpoch,
        EndLease,
        EpochInfo,
        GrantLease,
        ProvisionCommand,
    )
    from messages.control import Role
    from messages.events import DriverEvent
    from messages.sbe import SbeMessage
    from tensorpool_config.model import Profile


@dataclass(frozen=True, slots=True)
class Send:
    """Put an SBE message on the outbox (order of effects = order on the wire)."""

    message: SbeMessage


@dataclass(frozen=True, slots=True)
class SendAll:
    """Put many SBE messages decided in one step on the outbox at once (one wake-up)."""

    messages: tuple[SbeMessage, ...]


@dataclass(frozen=True, slots=True)
class Emit:
    """Report a lifecycle event to the event sink."""

    event: DriverEvent


@dataclass(frozen=True, slots=True)
class TellStream:
    """Tell the stream's StreamActor to provision (or to drop an epoch nobody will announce)."""

    stream_id: int
    command: ProvisionCommand | DiscardEpoch


@dataclass(frozen=True, slots=True, kw_only=True)
class SpawnStream:
    """Start a StreamActor (a new dynamic stream, or a supervised restart from the mirror)."""

    stream_id: int
    profile: Profile
    info: EpochInfo | None


@dataclass(frozen=True, slots=True)
class ForgetStream:
    """Stop the StreamActor of a dynamic stream whose creating attach failed."""

    stream_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StartLease:
    """Start a LeaseActor and grant it."""

    lease_id: int
    stream_id: int
    client_id: int
    role: Role
    grant: GrantLease


@dataclass(frozen=True, slots=True)
class EndLeaseActors:
    """Tell each ended lease's LeaseActor its end (after the revokes are on the outbox) and
    forget it: the actor only records the terminal state and stops."""

    ends: tuple[tuple[int, EndLease], ...]


@dataclass(frozen=True, slots=True)
class ArmLeaseCheck:
    """Have ``LeaseCheckTimerFired`` told at ``deadline_ns`` (replaces an earlier arming)."""

    deadline_ns: int


@dataclass(frozen=True, slots=True)
class WantIntake:
    """Ask the gateway for ``IntakeCaughtUp`` once it has read up to ``ns``."""

    ns: int


@dataclass(frozen=True, slots=True)
class ArmShutdown:
    """Ask the TimerActor for ShutdownTimerFired at ``deadline_ns``."""

    deadline_ns: int


@dataclass(frozen=True, slots=True)
class EnterStopped:
    """ShmDriverShutdown is out: clean up (optionally), then signal that the driver stopped."""

    cleanup_shm: bool


type DriverEffect = (
    Send
    | SendAll
    | Emit
    | TellStream
    | SpawnStream
    | ForgetStream
    | StartLease
    | EndLeaseActors
    | ArmLeaseCheck
    | WantIntake
    | ArmShutdown
    | EnterStopped
)
driver_effect: Final[Callable[[object], DriverEffect]] = effect_check(DriverEffect, "driver effect")
