"""PendingAttaches: the reservations of pending attaches are added and released as one."""

from actors.driver.commands import PendingAttach
from actors.driver.pending import PendingAttaches
from messages.control import Role
from tests.unit.helpers import attach_request


def pending(lease_id: int, client_id: int, node_id: int, role: Role) -> PendingAttach:
    return PendingAttach(
        correlation_id=lease_id,
        lease_id=lease_id,
        node_id=node_id,
        client_id=client_id,
        role=role,
        stream_id=10000,
    )


def test_a_pending_attach_blocks_its_client_node_and_producer_slot_until_released() -> None:
    table = PendingAttaches()
    producer = pending(1, client_id=7, node_id=3, role=Role.PRODUCER)
    consumer = pending(2, client_id=8, node_id=4, role=Role.CONSUMER)
    table.add(producer)
    table.add(consumer)
    assert (1 in table, len(table)) == (True, 2)
    # The stream's producer slot is the Stream HSM's (``Stream.pending_producer``).
    assert table.blocking(attach_request(client_id=9), 1) == 1
    assert table.blocking(attach_request(client_id=9), None) is None
    assert table.blocking(attach_request(client_id=8, role=Role.CONSUMER), 1) == 2
    request = attach_request(client_id=9, role=Role.CONSUMER, desired_node_id=3)
    assert table.blocking(request, 1) == 1  # the node id, not the producer slot
    assert table.blocking(attach_request(client_id=9, role=Role.CONSUMER), 1) is None
    table.hold(1, "behind the producer")
    assert table.release(producer) == ["behind the producer"]
    assert (1 in table, table.holds_client(7), table.blocking(request, None)) == (
        False,
        False,
        None,
    )
    assert table.release(consumer) == []
    assert (len(table), table.held()) == (0, {})
