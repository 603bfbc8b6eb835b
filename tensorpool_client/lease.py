"""A granted lease, built only from an OK attach response that passes the client checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from messages import ResponseCode, Role
from tensorpool_client.errors import InvalidResponse

if TYPE_CHECKING:
    from messages import PayloadPool, ShmAttachResponse

HEADER_SLOT_BYTES: Final = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """One client's authorisation for one stream in one role (driver-protocol.md §3.2)."""

    lease_id: int
    stream_id: int
    client_id: int
    role: Role
    epoch: int
    node_id: int
    lease_expiry_timestamp_ns: int
    layout_version: int
    header_nslots: int
    header_slot_bytes: int
    header_region_uri: str
    payload_pools: tuple[PayloadPool, ...]
    response: ShmAttachResponse


def lease_from_response(resp: ShmAttachResponse, *, client_id: int, role: Role) -> Lease:
    """Apply the acceptance rules the Julia and C clients apply to an OK response."""
    if resp.code != ResponseCode.OK:
        raise InvalidResponse(f"not an OK response: {resp.code!r}")
    required = {
        "lease_id": resp.lease_id,
        "lease_expiry_timestamp_ns": resp.lease_expiry_timestamp_ns,
        "stream_id": resp.stream_id,
        "epoch": resp.epoch,
        "layout_version": resp.layout_version,
        "header_nslots": resp.header_nslots,
        "header_slot_bytes": resp.header_slot_bytes,
        "node_id": resp.node_id,
    }
    missing = [name for name, value in required.items() if value is None]
    if missing:
        raise InvalidResponse(f"OK response with null fields: {', '.join(missing)}")
    assert resp.lease_id is not None
    assert resp.lease_expiry_timestamp_ns is not None
    assert resp.stream_id is not None
    assert resp.epoch is not None
    assert resp.layout_version is not None
    assert resp.header_nslots is not None
    assert resp.header_slot_bytes is not None
    assert resp.node_id is not None
    if resp.header_slot_bytes != HEADER_SLOT_BYTES:
        raise InvalidResponse(f"headerSlotBytes {resp.header_slot_bytes} != 256")
    if resp.header_nslots == 0:
        raise InvalidResponse("headerNslots is 0")
    if not resp.payload_pools:
        raise InvalidResponse("OK response without payload pools")
    for pool in resp.payload_pools:
        if pool.pool_nslots != resp.header_nslots:
            raise InvalidResponse(f"pool {pool.pool_id} has {pool.pool_nslots} slots, "
                                  f"header ring has {resp.header_nslots}")
        if not pool.region_uri:
            raise InvalidResponse(f"pool {pool.pool_id} has an empty region URI")
    if not resp.header_region_uri:
        raise InvalidResponse("empty header region URI")
    return Lease(
        lease_id=resp.lease_id,
        stream_id=resp.stream_id,
        client_id=client_id,
        role=role,
        epoch=resp.epoch,
        node_id=resp.node_id,
        lease_expiry_timestamp_ns=resp.lease_expiry_timestamp_ns,
        layout_version=resp.layout_version,
        header_nslots=resp.header_nslots,
        header_slot_bytes=resp.header_slot_bytes,
        header_region_uri=resp.header_region_uri,
        payload_pools=tuple(resp.payload_pools),
        response=resp,
    )
