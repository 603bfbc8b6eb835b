"""The Stream HSM: ``Unclaimed -> Provisioned``, the provisioning side of one stream.

The machine decides *whether* a command needs a fresh epoch and what to answer; the
StreamActor performs the provisioning it asks for (``Provision``) and feeds the outcome back
as ``Provisioned`` / ``ProvisioningFailed``, which the machine turns into the reply to the
driver and the next state. Rules (driver-behaviour.md §3 step 1, §6; A-6):

* a producer attach always provisions exactly one new epoch, from any state;
* a consumer attach provisions only while the stream is Unclaimed (epoch 0);
* losing the producer (detach, expiry, revoke) and a supervised restart provision a new epoch;
* a failed provisioning leaves the previous epoch and URIs untouched.

Who the producer is, and the stream's lifecycle around a producer change (settling, deferred
requests, detach replies), is the driver's (``actors/driver/model.py``, ``StreamEntry``):
one owner, so this machine keeps no copy of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from actors.driver.commands import (
    ConsumerAttach,
    EpochInfo,
    EpochProvisioned,
    EpochProvisionFailed,
    ProducerAttach,
    ProducerLeaseLost,
    ProvisionFailed,
    Reprovision,
    StreamReady,
)
from actors.runtime.hsm import HANDLED, HsmModel, Machine, Outcome, State, Transition

type ProvisionCause = ProducerAttach | ConsumerAttach | ProducerLeaseLost | Reprovision
type StreamReply = StreamReady | ProvisionFailed | EpochProvisioned | EpochProvisionFailed

if TYPE_CHECKING:
    from tensorpool_config.model import Profile


@dataclass(frozen=True, slots=True)
class Provision:
    """Effect: provision the next epoch (then run epoch GC) for ``cause``."""

    cause: ProvisionCause
    now_ns: int
    referenced_epochs: frozenset[int]


@dataclass(frozen=True, slots=True)
class Reply:
    """Effect: tell the driver ``message``."""

    message: StreamReply


type StreamEffect = Provision | Reply


def stream_effect(effect: object) -> StreamEffect:
    """An effect of this machine, typed; anything else is a bug, never silently dropped."""
    if isinstance(effect, Provision | Reply):
        return effect
    raise TypeError(f"unknown Stream HSM effect {effect!r}")


@dataclass(frozen=True, slots=True)
class Provisioned:
    """Event (from the actor): provisioning for ``cause`` produced ``info``."""

    cause: ProvisionCause
    info: EpochInfo


@dataclass(frozen=True, slots=True)
class ProvisioningFailed:
    """Event (from the actor): provisioning for ``cause`` failed with ``detail``."""

    cause: ProvisionCause
    detail: str


@dataclass(frozen=True, slots=True)
class Restored:
    """Event: a restarted actor starts from the driver's mirror of a provisioned stream."""


class StreamModel(HsmModel):
    """One stream's provisioned state as its StreamActor holds it."""

    __slots__ = ("info", "profile", "stream_id")

    def __init__(self, *, stream_id: int, profile: Profile, info: EpochInfo | None = None) -> None:
        super().__init__()
        self.stream_id = stream_id
        self.profile = profile
        self.info = info

    @property
    def epoch(self) -> int:
        return 0 if self.info is None else self.info.epoch


def _provision(m: StreamModel, ev: ProvisionCause) -> Outcome:
    m.emit(Provision(ev, ev.now_ns, ev.referenced_epochs))
    return HANDLED


def _serve_consumer(m: StreamModel, ev: ConsumerAttach) -> Outcome:
    assert m.info is not None  # only handled in Provisioned
    m.emit(Reply(StreamReady(stream_id=m.stream_id, info=m.info, attach=ev.attach, bumped=False)))
    return HANDLED


def _on_provisioned(m: StreamModel, ev: Provisioned) -> Outcome:
    m.info = ev.info
    cause = ev.cause
    if isinstance(cause, ProducerAttach | ConsumerAttach):
        m.emit(
            Reply(
                StreamReady(stream_id=m.stream_id, info=ev.info, attach=cause.attach, bumped=True)
            )
        )
    else:
        m.emit(Reply(EpochProvisioned(stream_id=m.stream_id, info=ev.info)))
    return Transition("Provisioned")


def _on_failed(m: StreamModel, ev: ProvisioningFailed) -> Outcome:
    cause = ev.cause
    if isinstance(cause, ProducerAttach | ConsumerAttach):
        m.emit(Reply(ProvisionFailed(stream_id=m.stream_id, detail=ev.detail, attach=cause.attach)))
        return HANDLED
    m.emit(Reply(EpochProvisionFailed(stream_id=m.stream_id, detail=ev.detail)))
    return HANDLED


def _restored(_m: StreamModel, _ev: Restored) -> Outcome:
    return Transition("Provisioned")


STREAM_MACHINE: Final = Machine[StreamModel](
    "Stream",
    states={
        "Stream": State(initial="Unclaimed"),
        "Unclaimed": State(parent="Stream"),
        "Provisioned": State(parent="Stream"),
    },
    handlers={
        ("Stream", ProducerAttach): _provision,
        ("Unclaimed", ConsumerAttach): _provision,
        ("Provisioned", ConsumerAttach): _serve_consumer,
        ("Stream", ProducerLeaseLost): _provision,
        ("Stream", Reprovision): _provision,
        ("Stream", Provisioned): _on_provisioned,
        ("Stream", ProvisioningFailed): _on_failed,
        ("Unclaimed", Restored): _restored,
    },
)
