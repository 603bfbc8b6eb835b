"""The reservations of the attaches that passed every check and wait for their stream.

One class keeps the driver-wide indices together (by lease id, client id, node id) and the
requests held behind each, so they are added and released as one. What a stream does with
its attaches (which wait, which is its producer's) is its Stream HSM's
(``stream_machine.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors.driver.commands import PendingAttach
    from messages.control import ShmAttachRequest

from messages.control import Role


class PendingAttaches:
    """Pending attaches by lease id, and the client ids and node ids they hold."""

    __slots__ = ("_by_client", "_by_lease", "_by_node", "_held")

    def __init__(self) -> None:
        self._by_lease: dict[int, PendingAttach] = {}
        self._by_client: dict[int, int] = {}
        self._by_node: dict[int, int] = {}
        # Requests to handle once the answer to a pending attach is out (by its lease id).
        self._held: dict[int, list[object]] = {}

    def __contains__(self, lease_id: object) -> bool:
        return lease_id in self._by_lease

    def __len__(self) -> int:
        return len(self._by_lease)

    def holds_client(self, client_id: int) -> bool:
        return client_id in self._by_client

    def add(self, attach: PendingAttach) -> None:
        lease_id = attach.lease_id
        self._by_lease[lease_id] = attach
        self._by_client[attach.client_id] = lease_id
        self._by_node[attach.node_id] = lease_id

    def blocking(self, req: ShmAttachRequest, pending_producer: int | None) -> int | None:
        """The lease id of a pending attach whose answer must precede the answer to ``req``:
        the stream's producer attach in flight (``pending_producer``, for a producer), or
        the attach that holds this client id or the node id asked for."""
        if req.role == Role.PRODUCER and pending_producer is not None:
            return pending_producer
        blocking = self._by_client.get(req.client_id)
        if blocking is None and req.desired_node_id is not None:
            blocking = self._by_node.get(req.desired_node_id)
        return blocking

    def hold(self, lease_id: int, request: object) -> None:
        """Handle ``request`` once the answer to the pending attach ``lease_id`` is out."""
        self._held.setdefault(lease_id, []).append(request)

    def held(self) -> dict[int, list[object]]:
        """A copy of the held requests (status and tests)."""
        return {lease_id: list(requests) for lease_id, requests in self._held.items()}

    def release(self, attach: PendingAttach) -> list[object]:
        """Forget ``attach``; returns the requests held behind it, to be handled next."""
        lease_id = attach.lease_id
        self._by_lease.pop(lease_id, None)
        if self._by_client.get(attach.client_id) == lease_id:
            del self._by_client[attach.client_id]
        if self._by_node.get(attach.node_id) == lease_id:
            del self._by_node[attach.node_id]
        return self._held.pop(lease_id, [])
