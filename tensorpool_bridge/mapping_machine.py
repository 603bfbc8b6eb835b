"""The life of one mapping half (sender or receiver) as an HSM on ``actors.hsm``.

States::

    mapping
    ├── attaching          entry: Attach (sender: a CONSUMER lease, receiver: PRODUCER)
    ├── backing_off        entry: RetryAfter(attach_backoff_ms)
    ├── attached
    │   ├── waiting_announce   no source announce seen yet (the receiver drops every chunk)
    │   ├── streaming
    │   └── remapping      receiver only: entry Reattach (a fresh local epoch, B-11)
    └── stopped            entry: Release

Handlers decide and return effects; the ``MappingActor`` performs them (attach, detach,
timers) and feeds the outcomes back as events. Time is never read here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from actors.runtime.hsm import HANDLED, HsmModel, Machine, Outcome, State, Transition

# ------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class Attached:
    announce_known: bool
    """Whether the network thread has already seen the source announce."""


@dataclass(frozen=True, slots=True)
class AttachFailed:
    reason: str


@dataclass(frozen=True, slots=True)
class RetryDue:
    pass


@dataclass(frozen=True, slots=True)
class SourceEpoch:
    """An announce of the source stream was forwarded (sender) or applied (receiver)."""

    epoch: int


@dataclass(frozen=True, slots=True)
class NeedNewLocalEpoch:
    """Receiver: a higher source epoch after committed frames (§6.9)."""

    epoch: int


@dataclass(frozen=True, slots=True)
class LeaseLost:
    reason: str


@dataclass(frozen=True, slots=True)
class Stop:
    pass


# ------------------------------------------------------------------ effects


@dataclass(frozen=True, slots=True)
class Attach:
    pass


@dataclass(frozen=True, slots=True)
class Reattach:
    pass


@dataclass(frozen=True, slots=True)
class Release:
    pass


@dataclass(frozen=True, slots=True)
class RetryAfter:
    delay_ms: int


@dataclass(frozen=True, slots=True)
class StateChanged:
    state: str
    detail: str = ""


# ------------------------------------------------------------------ model


@dataclass(slots=True)
class MappingModel(HsmModel):
    role: str
    dest_stream_id: int
    attach_backoff_ms: int
    source_epoch: int | None = None
    attach_failures: int = 0
    reattaches: int = 0
    last_error: str = ""
    history: list[str] = field(default_factory=list)

    def changed(self, state: str, detail: str = "") -> None:
        self.history.append(state)
        del self.history[:-16]
        self.emit(StateChanged(state, detail))


def _enter_attaching(m: MappingModel) -> None:
    m.changed("attaching")
    m.emit(Attach())


def _enter_backing_off(m: MappingModel) -> None:
    m.changed("backing_off", m.last_error)
    m.emit(RetryAfter(m.attach_backoff_ms))


def _enter_waiting(m: MappingModel) -> None:
    m.changed("waiting_announce")


def _enter_streaming(m: MappingModel) -> None:
    m.changed("streaming", "" if m.source_epoch is None else f"source epoch {m.source_epoch}")


def _enter_remapping(m: MappingModel) -> None:
    m.reattaches += 1
    m.changed("remapping", f"source epoch {m.source_epoch}")
    m.emit(Reattach())


def _enter_stopped(m: MappingModel) -> None:
    m.changed("stopped")
    m.emit(Release())


def _attached(m: MappingModel, ev: Attached) -> Outcome:
    m.attach_failures = 0
    return Transition("streaming" if ev.announce_known else "waiting_announce")


def _attach_failed(m: MappingModel, ev: AttachFailed) -> Outcome:
    m.attach_failures += 1
    m.last_error = ev.reason
    m.emit(Release())
    return Transition("backing_off")


def _retry(_m: MappingModel, _ev: RetryDue) -> Outcome:
    return Transition("attaching")


def _epoch_seen(m: MappingModel, ev: SourceEpoch) -> Outcome:
    m.source_epoch = ev.epoch
    return HANDLED


def _epoch_while_waiting(m: MappingModel, ev: SourceEpoch) -> Outcome:
    m.source_epoch = ev.epoch
    return Transition("streaming")


def _epoch_while_streaming(m: MappingModel, ev: SourceEpoch) -> Outcome:
    changed = m.source_epoch is not None and ev.epoch != m.source_epoch
    m.source_epoch = ev.epoch
    if changed:
        m.changed("streaming", f"source epoch {ev.epoch}")  # the sender remapped in place
    return HANDLED


def _need_new_epoch(m: MappingModel, ev: NeedNewLocalEpoch) -> Outcome:
    m.source_epoch = ev.epoch
    return Transition("remapping")


def _epoch_seen_new(m: MappingModel, ev: NeedNewLocalEpoch) -> Outcome:
    m.source_epoch = ev.epoch  # the re-attach under way gives a fresh local epoch anyway
    return HANDLED


def _reattached(_m: MappingModel, _ev: Attached) -> Outcome:
    return Transition("streaming")


def _lease_lost(m: MappingModel, ev: LeaseLost) -> Outcome:
    m.last_error = ev.reason
    m.emit(Release())
    return Transition("backing_off")


def _stop(_m: MappingModel, _ev: Stop) -> Outcome:
    return Transition("stopped")


def _ignore(_m: MappingModel, _ev: object) -> Outcome:
    return HANDLED


MAPPING_MACHINE: Machine[MappingModel] = Machine(
    "bridge-mapping",
    {
        "mapping": State(initial="attaching"),
        "attaching": State(parent="mapping", entry=_enter_attaching),
        "backing_off": State(parent="mapping", entry=_enter_backing_off),
        "attached": State(parent="mapping", initial="waiting_announce"),
        "waiting_announce": State(parent="attached", entry=_enter_waiting),
        "streaming": State(parent="attached", entry=_enter_streaming),
        "remapping": State(parent="attached", entry=_enter_remapping),
        "stopped": State(parent="mapping", entry=_enter_stopped),
    },
    {
        ("mapping", Stop): _stop,
        ("mapping", SourceEpoch): _epoch_seen,
        ("mapping", NeedNewLocalEpoch): _ignore,  # not attached: the next attach is fresh
        ("mapping", RetryDue): _ignore,
        ("mapping", LeaseLost): _ignore,
        ("mapping", Attached): _ignore,
        ("mapping", AttachFailed): _ignore,
        ("attaching", Attached): _attached,
        ("attaching", AttachFailed): _attach_failed,
        ("backing_off", RetryDue): _retry,
        ("attached", LeaseLost): _lease_lost,
        ("waiting_announce", SourceEpoch): _epoch_while_waiting,
        ("streaming", SourceEpoch): _epoch_while_streaming,
        ("streaming", NeedNewLocalEpoch): _need_new_epoch,
        ("waiting_announce", NeedNewLocalEpoch): _need_new_epoch,
        ("remapping", Attached): _reattached,
        ("remapping", AttachFailed): _attach_failed,
        ("remapping", NeedNewLocalEpoch): _epoch_seen_new,
        ("stopped", Stop): _ignore,
        ("stopped", SourceEpoch): _ignore,
    },
)
