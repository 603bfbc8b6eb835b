"""The StreamActor: one thread per stream, doing its SHM file I/O for the Stream HSM.

The stream's lifecycle is decided by its Stream HSM on the DriverActor's thread
(``actors/driver/stream_machine.py``); this actor only provisions when it is asked, in the
order asked, and answers. Provisioning is ``shm.next_epoch`` + the provisioner
(``shm.provision_epoch`` unless one is injected) with the stream's profile and the config's
``[shm]``/``[policies]``, followed by epoch GC that keeps the epochs the driver says its
leases still reference. A provisioning error is an answer (``ProvisionFailed``/
``EpochProvisionFailed``), not a failure; anything else raised here is a bug and goes to the
supervisor (``ChildFailed``).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from typing import TYPE_CHECKING, Any

import pykka

from actors.driver.commands import (
    ChildKind,
    CleanupEpoch,
    ConsumerAttach,
    DiscardEpoch,
    EpochInfo,
    EpochProvisioned,
    EpochProvisionFailed,
    ProducerAttach,
    ProducerLeaseLost,
    ProvisionFailed,
    Reprovision,
    StreamReady,
)
from actors.driver.supervision import SupervisedChild
from messages.control import PayloadPool
from shm.errors import ShmError
from shm.gc import collect_epochs
from shm.paths import epoch_dir, stream_dir
from shm.provision import ProvisionedEpoch, ProvisionRequest, next_epoch, provision_epoch

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from actors.driver.commands import ProvisionCommand
    from actors.driver.supervision import SupervisorLink
    from tensorpool_config.model import DriverConfig, Profile

type Provisioner = Callable[[ProvisionRequest], ProvisionedEpoch]
type StreamReply = StreamReady | ProvisionFailed | EpochProvisioned | EpochProvisionFailed

_COMMANDS = (ProducerAttach, ConsumerAttach, ProducerLeaseLost, Reprovision)

logger = logging.getLogger(__name__)


def epoch_info(profile: Profile, provisioned: ProvisionedEpoch, hugepages: bool) -> EpochInfo:
    """Response/announce view of an epoch: pools in profile order, poolNslots = headerNslots."""
    by_id = {pool.pool_id: pool for pool in provisioned.pools}
    return EpochInfo(
        epoch=provisioned.epoch,
        header_nslots=profile.header_nslots,
        header_uri=provisioned.header_uri,
        pools=tuple(
            PayloadPool(
                pool_id=spec.pool_id,
                pool_nslots=profile.header_nslots,
                stride_bytes=spec.stride_bytes,
                region_uri=by_id[spec.pool_id].uri,
            )
            for spec in profile.payload_pools
        ),
        hugepages=hugepages,
    )


class StreamActor(SupervisedChild, pykka.ThreadingActor):
    """Provisions one stream's epochs; supervised by the DriverActor
    (``actors/driver/supervision.py``)."""

    child_kind = ChildKind.STREAM

    use_daemon_thread = True

    def __init__(
        self,
        *,
        supervisor: SupervisorLink,
        config: DriverConfig,
        stream_id: int,
        profile: Profile,
        hugepages: bool,
        provisioner: Provisioner | None = None,
        info: EpochInfo | None = None,
        gc_on_start: bool = False,
    ) -> None:
        super().__init__(supervisor, stream_id)
        self._config = config
        self._stream_id = stream_id
        self._profile = profile
        self._hugepages = hugepages
        self._provisioner = provisioner
        self._gc_on_start = gc_on_start
        # The epoch whose files this actor holds (a restarted actor: the Stream HSM's).
        self._epoch = 0 if info is None else info.epoch
        self._current: ProvisionedEpoch | None = None
        self._dir: Path = stream_dir(config.shm.base_dir, config.shm.namespace, stream_id)

    def on_start(self) -> None:
        if self._gc_on_start:
            min_age_ns = self._config.policies.epoch_gc_min_age_ns
            self._collect(self._epoch, frozenset(), min_age_ns)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, CleanupEpoch):
            return self._cleanup()
        if isinstance(message, DiscardEpoch):
            self._discard(message.epoch)
            return None
        if not isinstance(message, _COMMANDS):
            raise TypeError(f"StreamActor cannot handle {message!r}")
        self._reply(self._answer(message))
        return None

    def _answer(self, command: ProvisionCommand) -> StreamReply:
        provisioned = self._provision(command.now_ns, command.referenced_epochs)
        stream_id = self._stream_id
        if isinstance(command, ProducerAttach | ConsumerAttach):
            attach = command.attach
            if isinstance(provisioned, str):
                return ProvisionFailed(stream_id=stream_id, detail=provisioned, attach=attach)
            return StreamReady(stream_id=stream_id, info=provisioned, attach=attach)
        if isinstance(provisioned, str):
            return EpochProvisionFailed(stream_id=stream_id, detail=provisioned)
        return EpochProvisioned(stream_id=stream_id, info=provisioned)

    def _reply(self, reply: StreamReply) -> None:
        if not self._supervisor.tell(reply):
            self._dropped(reply)

    def _dropped(self, reply: StreamReply) -> None:
        """The driver stopped before this reply: an epoch provisioned for it is never
        announced, so it goes (a client may only learn of an epoch from the driver)."""
        if isinstance(reply, EpochProvisioned | StreamReady):
            self._discard(reply.info.epoch)

    def _discard(self, epoch: int) -> None:
        if epoch != self._epoch or self._current is None:
            return  # not the epoch this actor holds (already replaced, or restored)
        logger.debug(
            "stream %d: driver stopped; epoch %d removed unannounced", self._stream_id, epoch
        )
        self._cleanup()

    def _provision(self, now_ns: int, referenced: frozenset[int]) -> EpochInfo | str:
        """The next epoch, provisioned, or what went wrong (the previous one stays)."""
        shm, policies, profile = self._config.shm, self._config.policies, self._profile
        try:
            epoch = next_epoch(self._dir, self._epoch, now_ns)
        except OSError as exc:
            return f"cannot list {self._dir}: {exc}"
        request = ProvisionRequest(
            base_dir=shm.base_dir,
            namespace=shm.namespace,
            allowed_base_dirs=shm.allowed_base_dirs,
            stream_id=self._stream_id,
            epoch=epoch,
            header_nslots=profile.header_nslots,
            pools=tuple((p.pool_id, p.stride_bytes) for p in profile.payload_pools),
            permissions_mode=shm.permissions_mode,
            prefault=policies.prefault_shm,
            mlock=policies.mlock_shm,
            hugepages=self._hugepages,
            pid=os.getpid(),
            now_ns=now_ns,
        )
        try:
            if self._provisioner is None:
                provisioned = provision_epoch(
                    request, reclaim_space=lambda: self._collect(self._epoch, referenced, 0)
                )
            else:
                provisioned = self._provisioner(request)
        except (ShmError, OSError) as exc:
            logger.warning(
                "stream %d: provisioning epoch %d failed: %s", self._stream_id, epoch, exc
            )
            return str(exc)
        if self._current is not None:
            self._current.release()
        self._current = provisioned
        self._epoch = provisioned.epoch
        self._collect(provisioned.epoch, referenced, policies.epoch_gc_min_age_ns)
        return epoch_info(profile, provisioned, self._hugepages)

    def _collect(self, current: int, referenced: frozenset[int], min_age_ns: int) -> None:
        policies = self._config.policies
        if not policies.epoch_gc_enabled or policies.epoch_gc_keep <= 0:
            return
        try:
            removed = collect_epochs(
                self._dir,
                current_epoch=current,
                referenced_epochs=referenced,
                keep=policies.epoch_gc_keep,
                min_age_ns=min_age_ns,
                allowed_base_dirs=self._config.shm.allowed_base_dirs,
                now_monotonic_ns=_monotonic_ns(),
                own_pid=os.getpid(),
            )
        except (ShmError, OSError) as exc:
            logger.warning("stream %d: epoch gc failed: %s", self._stream_id, exc)
            return
        for path in removed:
            logger.info("stream %d: epoch gc removed %s", self._stream_id, path)

    def _cleanup(self) -> bool:
        """``cleanup_shm_on_exit``: remove the current epoch directory; True if removed."""
        if self._epoch == 0:
            return False
        if self._current is not None:
            self._current.release()
            self._current = None
        shm = self._config.shm
        path = epoch_dir(shm.base_dir, shm.namespace, self._stream_id, self._epoch)
        shutil.rmtree(path, ignore_errors=True)
        return not path.exists()

    def on_stop(self) -> None:
        if self._current is not None:
            self._current.release()
            self._current = None


def _monotonic_ns() -> int:
    # GC compares superblock activity timestamps, which are CLOCK_MONOTONIC: always the
    # real clock, also under a ManualClock (the files are real).
    return time.monotonic_ns()
