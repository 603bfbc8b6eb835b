"""The two messages built from an ``EpochInfo``: the OK attach response and the announce.

They describe the same epoch with the same fields (layout, header ring, pools, URIs), so
one function maps the epoch and both messages take it from there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from actors.driver.attach_policy import LAYOUT_VERSION
from messages.control import ResponseCode, ShmAttachResponse
from messages.wire import ClockDomain, ShmPoolAnnounce
from shm.superblock import HEADER_SLOT_BYTES

if TYPE_CHECKING:
    from actors.driver.commands import EpochInfo, PendingAttach
    from messages.control import PayloadPool


class _EpochFields(TypedDict):
    epoch: int
    layout_version: int
    header_nslots: int
    header_slot_bytes: int
    payload_pools: tuple[PayloadPool, ...]
    header_region_uri: str


def _epoch_fields(info: EpochInfo) -> _EpochFields:
    return {
        "epoch": info.epoch,
        "layout_version": LAYOUT_VERSION,
        "header_nslots": info.header_nslots,
        "header_slot_bytes": HEADER_SLOT_BYTES,
        "payload_pools": info.pools,
        "header_region_uri": info.header_uri,
    }


def attach_ok(attach: PendingAttach, info: EpochInfo, expiry_ns: int) -> ShmAttachResponse:
    return ShmAttachResponse(
        correlation_id=attach.correlation_id,
        code=ResponseCode.OK,
        lease_id=attach.lease_id,
        lease_expiry_timestamp_ns=expiry_ns,
        stream_id=attach.stream_id,
        node_id=attach.node_id,
        error_message="",
        **_epoch_fields(info),
    )


def pool_announce(
    stream_id: int, producer_id: int, info: EpochInfo, now_ns: int
) -> ShmPoolAnnounce:
    return ShmPoolAnnounce(
        stream_id=stream_id,
        producer_id=producer_id,
        announce_timestamp_ns=now_ns,
        announce_clock_domain=ClockDomain.MONOTONIC,
        **_epoch_fields(info),
    )
