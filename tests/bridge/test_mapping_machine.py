"""The mapping HSM: attach, back-off, announce, new local epochs, lease loss, stop."""

from __future__ import annotations

from actors.runtime.hsm import Hsm
from tensorpool_bridge.mapping_machine import (
    MAPPING_MACHINE,
    Attach,
    Attached,
    AttachFailed,
    LeaseLost,
    MappingModel,
    NeedNewLocalEpoch,
    Reattach,
    Release,
    RetryAfter,
    RetryDue,
    SourceEpoch,
    StateChanged,
    Stop,
)


def start(role: str = "receiver") -> tuple[Hsm[MappingModel], list[object]]:
    hsm = Hsm(MAPPING_MACHINE, MappingModel(role, 20000, 1000))
    return hsm, hsm.start()


def actions(effects: list[object]) -> list[object]:
    return [e for e in effects if not isinstance(e, StateChanged)]


def test_attach_then_wait_for_the_announce_then_stream() -> None:
    hsm, effects = start()
    assert actions(effects) == [Attach()]
    assert hsm.state == "attaching"
    effects = hsm.dispatch(Attached(announce_known=False))
    assert hsm.state == "waiting_announce"
    assert effects == [StateChanged("waiting_announce")]
    hsm.dispatch(SourceEpoch(7))
    assert hsm.state == "streaming"
    assert hsm.model.source_epoch == 7


def test_announce_seen_before_the_attach_streams_at_once() -> None:
    hsm, _ = start()
    hsm.dispatch(SourceEpoch(7))
    hsm.dispatch(Attached(announce_known=True))
    assert hsm.state == "streaming"


def test_failed_attach_backs_off_and_retries() -> None:
    hsm, _ = start()
    effects = hsm.dispatch(AttachFailed("stream has a producer"))
    assert actions(effects) == [Release(), RetryAfter(1000)]
    assert hsm.state == "backing_off"
    assert actions(hsm.dispatch(RetryDue())) == [Attach()]
    assert hsm.model.attach_failures == 1


def test_new_source_epoch_remaps_with_a_new_local_epoch() -> None:
    hsm, _ = start()
    hsm.dispatch(Attached(announce_known=True))
    effects = hsm.dispatch(NeedNewLocalEpoch(9))
    assert hsm.state == "remapping"
    assert actions(effects) == [Reattach()]
    hsm.dispatch(NeedNewLocalEpoch(10))
    assert hsm.state == "remapping"
    hsm.dispatch(Attached(announce_known=True))
    assert hsm.state == "streaming"
    assert hsm.model.reattaches == 1
    assert hsm.model.source_epoch == 10


def test_sender_follows_epochs_in_place() -> None:
    hsm, _ = start("sender")
    hsm.dispatch(Attached(announce_known=True))
    effects = hsm.dispatch(SourceEpoch(11))
    assert hsm.state == "streaming"
    effects = hsm.dispatch(SourceEpoch(12))
    assert effects == [StateChanged("streaming", "source epoch 12")]


def test_lease_loss_releases_and_reattaches_after_backoff() -> None:
    hsm, _ = start()
    hsm.dispatch(Attached(announce_known=True))
    effects = hsm.dispatch(LeaseLost("revoked"))
    assert actions(effects) == [Release(), RetryAfter(1000)]
    assert hsm.state == "backing_off"
    assert hsm.dispatch(LeaseLost("again")) == []  # not attached: nothing to release


def test_stop_releases_once_from_anywhere() -> None:
    hsm, _ = start()
    hsm.dispatch(Attached(announce_known=True))
    assert actions(hsm.dispatch(Stop())) == [Release()]
    assert hsm.state == "stopped"
    assert hsm.dispatch(Stop()) == []
    assert hsm.dispatch(Attached(announce_known=True)) == []
    assert hsm.unhandled == 0
