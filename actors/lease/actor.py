"""The LeaseActor: one pooled actor per lease, hosting the Lease HSM.

It is told ``GrantLease`` once and ``EndLease`` when the driver has ended the lease. The
driver puts the ``ShmLeaseRevoked`` on the outbox in the step that decides the end (batched
with every lease that step ends), so the wire never waits for this actor: on ``EndLease`` it
records the terminal state and stops. Handlers never block: this actor runs on the shared
dispatcher with thousands of others.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from actors.driver.commands import ChildKind, EndLease, GrantLease
from actors.driver.supervision import SupervisedChild
from actors.lease.machine import LEASE_MACHINE, LeaseModel
from actors.runtime.dispatcher import PooledActor
from actors.runtime.hsm import Hsm

if TYPE_CHECKING:

    from actors.driver.supervision import SupervisorLink
    from messages.control import Role

logger = logging.getLogger(__name__)


class LeaseActor(SupervisedChild, PooledActor):
    """Hosts one lease's HSM; supervised by the DriverActor (``actors/driver/supervision.py``).

    Not in pykka's ``ActorRegistry`` (``registered = False``): with 30,000 leases ending,
    its O(n) removal alone cost seconds of CPU; the DriverActor holds every lease's ref.
    """

    child_kind = ChildKind.LEASE

    registered = False

    def __init__(
        self,
        *,
        supervisor: SupervisorLink,
        lease_id: int,
        stream_id: int,
        client_id: int,
        role: Role,
    ) -> None:
        super().__init__(supervisor, lease_id)
        self._hsm = Hsm(
            LEASE_MACHINE,
            LeaseModel(lease_id=lease_id, stream_id=stream_id, client_id=client_id, role=role),
        )
        self._hsm.start()

    def on_receive(self, message: Any) -> Any:
        if not isinstance(message, GrantLease | EndLease):
            raise TypeError(f"LeaseActor cannot handle {message!r}")
        effects = self._hsm.dispatch(message)
        if effects:
            raise TypeError(f"the Lease HSM emitted effects it has no port for: {effects!r}")
        if self._hsm.in_state("Ended"):
            self.stop_after_this_message()
        return None
