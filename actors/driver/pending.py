"""The attaches that passed every check and wait for their stream, and what they hold.

One class keeps the indices together (by lease id, client id, node id, stream, the stream's
producer slot) and the requests held behind each, so they are added and released as one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors.driver.commands import PendingAttach
    from messages.control import ShmAttachRequest

from messages.control import Role


class PendingAttaches:
    """Pending attaches by lease id, and the client ids, node ids and producer slots they hold."""

    __slots__ = ("_by_client", "_by_lease", "_by_node", "_by_stream", "_held", "_producers")

    def __init__(self) -> None:
        self._by_lease: dict[int, PendingAttach] = {}
        self._by_client: dict[int, int] = {}
        self._by_node: dict[int, int] = {}
        self._by_stream: dict[int, set[int]] = {}
        self._producers: dict[int, int] = {}  # stream id -> lease id of its pending producer
        # Requests to handle once the answer to a pending attach is out (by its lease id).
        self._held: dict[int, list[object]] = {}

    def __contains__(self, lease_id: object) -> bool:
        return lease_id in self._by_lease

    def __len__(self) -> int:
        return len(self._by_lease)

    def holds_client(self, client_id: int) -> bool:
        return client_id in self._by_client

    @property
    def producer_streams(self) -> dict[int, int]:
        """Stream ids with a producer attach in flight (read-only use)."""
        return self._producers

    def of_stream(self, stream_id: int) -> list[PendingAttach]:
        """The stream's pending attaches, in lease id order."""
        lease_ids = sorted(self._by_stream.get(stream_id, ()))
        return [self._by_lease[lease_id] for lease_id in lease_ids]

    def any_for(self, stream_id: int) -> bool:
        return bool(self._by_stream.get(stream_id))

    def add(self, attach: PendingAttach) -> None:
        lease_id = attach.lease_id
        self._by_lease[lease_id] = attach
        self._by_client[attach.client_id] = lease_id
        self._by_node[attach.node_id] = lease_id
        self._by_stream.setdefault(attach.stream_id, set()).add(lease_id)
        if attach.role == Role.PRODUCER:
            self._producers[attach.stream_id] = lease_id

    def blocking(self, req: ShmAttachRequest) -> int | None:
        """The lease id of a pending attach whose answer must precede the answer to ``req``:
        it holds the stream's producer slot, this client id or the node id asked for."""
        if req.role == Role.PRODUCER:
            producer = self._producers.get(req.stream_id)
            if producer is not None:
                return producer
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
        of_stream = self._by_stream.get(attach.stream_id)
        if of_stream is not None:
            of_stream.discard(lease_id)
            if not of_stream:
                del self._by_stream[attach.stream_id]
        if self._producers.get(attach.stream_id) == lease_id:
            del self._producers[attach.stream_id]
        return self._held.pop(lease_id, [])
