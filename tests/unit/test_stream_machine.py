"""Every transition of the Stream HSM (A-6: one bump per producer attach)."""

from actors.driver.commands import (
    ConsumerAttach,
    EpochInfo,
    EpochProvisioned,
    EpochProvisionFailed,
    PendingAttach,
    ProducerAttach,
    ProducerLeaseLost,
    ProvisionFailed,
    Reprovision,
    StreamReady,
)
from actors.runtime.hsm import Hsm
from actors.stream.machine import (
    STREAM_MACHINE,
    Provision,
    Provisioned,
    ProvisioningFailed,
    Reply,
    Restored,
    StreamModel,
)
from messages.control import Role
from tensorpool_config.model import PoolSpec, Profile

PROFILE = Profile("tiny", 8, 256, (PoolSpec(1, 64),))
NONE: frozenset[int] = frozenset()


def info(epoch: int) -> EpochInfo:
    return EpochInfo(
        epoch=epoch, header_nslots=8, header_uri=f"h{epoch}", pools=(), hugepages=False
    )


def attach(lease_id: int, role: Role) -> PendingAttach:
    return PendingAttach(
        correlation_id=lease_id,
        lease_id=lease_id,
        node_id=1,
        client_id=lease_id,
        role=role,
        stream_id=5,
    )


def stream(start: EpochInfo | None = None) -> Hsm[StreamModel]:
    hsm = Hsm(STREAM_MACHINE, StreamModel(stream_id=5, profile=PROFILE, info=start))
    hsm.start()
    return hsm


def provision(hsm: Hsm[StreamModel], command: object, epoch: int) -> list[object]:
    effects = hsm.dispatch(command)
    assert len(effects) == 1
    assert isinstance(effects[0], Provision)
    return hsm.dispatch(Provisioned(effects[0].cause, info(epoch)))


def test_producer_attach_from_unclaimed_bumps_once() -> None:
    hsm = stream()
    assert hsm.state == "Unclaimed"
    command = ProducerAttach(attach(1, Role.PRODUCER), 10, NONE)
    replies = provision(hsm, command, 100)
    assert replies == [
        Reply(StreamReady(stream_id=5, info=info(100), attach=command.attach, bumped=True))
    ]
    assert hsm.state == "Provisioned"


def test_consumer_attach_provisions_only_at_epoch_zero() -> None:
    hsm = stream()
    replies = provision(hsm, ConsumerAttach(attach(2, Role.CONSUMER), 10, NONE), 100)
    assert isinstance(replies[0], Reply)
    assert hsm.state == "Provisioned"
    second = ConsumerAttach(attach(3, Role.CONSUMER), 11, NONE)
    assert hsm.dispatch(second) == [
        Reply(StreamReady(stream_id=5, info=info(100), attach=second.attach, bumped=False))
    ]


def test_producer_attach_on_ready_stream_bumps() -> None:
    hsm = stream(info(100))
    hsm.dispatch(Restored())
    assert hsm.state == "Provisioned"
    provision(hsm, ProducerAttach(attach(1, Role.PRODUCER), 10, NONE), 101)
    assert hsm.state == "Provisioned"


def test_producer_lost_bumps() -> None:
    hsm = stream()
    provision(hsm, ProducerAttach(attach(1, Role.PRODUCER), 10, NONE), 100)
    replies = provision(hsm, ProducerLeaseLost(1, 20, NONE), 101)
    assert replies == [Reply(EpochProvisioned(stream_id=5, info=info(101)))]
    assert hsm.state == "Provisioned"


def test_consumer_attach_after_a_producer_is_served_from_the_epoch() -> None:
    hsm = stream()
    provision(hsm, ProducerAttach(attach(1, Role.PRODUCER), 10, NONE), 100)
    consumer = ConsumerAttach(attach(2, Role.CONSUMER), 11, NONE)
    assert hsm.dispatch(consumer) == [
        Reply(StreamReady(stream_id=5, info=info(100), attach=consumer.attach, bumped=False))
    ]
    assert hsm.state == "Provisioned"


def test_reprovision_bumps() -> None:
    hsm = stream(info(100))
    hsm.dispatch(Restored())
    replies = provision(hsm, Reprovision(5, NONE), 101)
    assert replies == [Reply(EpochProvisioned(stream_id=5, info=info(101)))]


def test_failed_attach_provisioning_keeps_the_state_and_epoch() -> None:
    hsm = stream()
    command = ProducerAttach(attach(1, Role.PRODUCER), 10, NONE)
    (effect,) = hsm.dispatch(command)
    assert isinstance(effect, Provision)
    replies = hsm.dispatch(ProvisioningFailed(command, "disk full"))
    assert replies == [
        Reply(ProvisionFailed(stream_id=5, detail="disk full", attach=command.attach))
    ]
    assert hsm.state == "Unclaimed"
    assert hsm.model.epoch == 0


def test_failed_reprovision_after_producer_loss_keeps_old_epoch() -> None:
    hsm = stream()
    provision(hsm, ProducerAttach(attach(1, Role.PRODUCER), 10, NONE), 100)
    lost = ProducerLeaseLost(1, 20, NONE)
    hsm.dispatch(lost)
    replies = hsm.dispatch(ProvisioningFailed(lost, "no space"))
    assert replies == [Reply(EpochProvisionFailed(stream_id=5, detail="no space"))]
    assert hsm.state == "Provisioned"
    assert hsm.model.epoch == 100
