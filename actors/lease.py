"""The LeaseActor: one pooled actor per lease, hosting the Lease HSM.

It is told ``GrantLease`` once and ``EndLease`` when the driver decides the lease ends; on
reaching a terminal state it puts the ``ShmLeaseRevoked`` on the outbox, *then* tells the
driver ``LeaseEnded`` and stops, so the revoke always precedes whatever the driver does next
(the epoch-bump announce, the detach response). Handlers never block: this actor runs on the
shared dispatcher with thousands of others.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from actors.commands import EndLease, GrantLease, LeaseEnded
from actors.dispatcher import PooledActor
from actors.hsm import Hsm
from actors.lease_machine import LEASE_MACHINE, LeaseModel, PublishRevoke
from actors.supervision import CHILD_LEASE, report_failure

if TYPE_CHECKING:
    from types import TracebackType

    import pykka

    from messages.control import Role
    from messages.events import Outbox

logger = logging.getLogger(__name__)


class LeaseActor(PooledActor):
    """Hosts one lease's HSM; supervised by the DriverActor (``actors/supervision.py``)."""

    def __init__(
        self,
        *,
        driver: pykka.ActorRef[Any],
        outbox: Outbox,
        lease_id: int,
        stream_id: int,
        client_id: int,
        role: Role,
    ) -> None:
        super().__init__()
        self._driver = driver
        self._outbox = outbox
        self._hsm = Hsm(
            LEASE_MACHINE,
            LeaseModel(lease_id=lease_id, stream_id=stream_id, client_id=client_id, role=role),
        )
        self._hsm.start()

    @property
    def state(self) -> str:
        return ".".join(self._hsm.path)

    def on_receive(self, message: Any) -> Any:
        if not isinstance(message, GrantLease | EndLease):
            raise TypeError(f"LeaseActor cannot handle {message!r}")
        was_ended = self._hsm.in_state("Ended")
        for effect in self._hsm.dispatch(message):
            if isinstance(effect, PublishRevoke):
                self._outbox.send(effect.message)
        model = self._hsm.model
        if not was_ended and self._hsm.in_state("Ended"):
            assert model.reason is not None  # set by the terminal state's entry
            self._driver.tell(
                LeaseEnded(lease_id=model.lease_id, reason=model.reason, now_ns=model.ended_ns)
            )
            self.stop()
        return None

    def on_failure(
        self,
        _exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        report_failure(
            self._driver, CHILD_LEASE, self._hsm.model.lease_id, self.actor_urn, exception_value
        )
