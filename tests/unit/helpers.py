"""Builders shared by the unit tests of the attach path and of the Driver HSM."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.driver.commands import EpochInfo
from actors.driver.effects import Send, SendAll
from actors.driver.machine import DriverStarted, new_driver_hsm
from actors.driver.model import DriverModel
from actors.testing import small_config
from messages.control import PayloadPool, Role, ShmAttachRequest

if TYPE_CHECKING:
    from pathlib import Path

    from actors.runtime.hsm import Hsm

TTL = 3_000_000_000  # small_config's lease lifetime: 1000 ms x 3
INFO = EpochInfo(
    epoch=100,
    header_nslots=8,
    header_uri="shm:file?path=/x/header.ring",
    pools=(
        PayloadPool(pool_id=1, pool_nslots=8, stride_bytes=64, region_uri="shm:file?path=/x/1"),
    ),
    hugepages=False,
)
# The epoch a producer-loss bump (or a second provisioning) makes after INFO.
NEW = EpochInfo(epoch=101, header_nslots=8, header_uri="h", pools=INFO.pools, hugepages=False)


def new_driver(tmp_path: Path, **policies: object) -> Hsm[DriverModel]:
    """A started Driver HSM over ``small_config`` (``policies`` override single keys)."""
    cfg = small_config(tmp_path, policies=policies)
    hsm = new_driver_hsm(
        DriverModel(cfg, now_ns=0, pid=1, hugepages_capable=False, lease_id_seed=0)
    )
    hsm.dispatch(DriverStarted())
    return hsm


def sends(effects: list[object]) -> list[Any]:
    """The SBE messages among ``effects`` (single and batched), in wire order."""
    out: list[Any] = []
    for e in effects:
        if isinstance(e, Send):
            out.append(e.message)
        elif isinstance(e, SendAll):
            out.extend(e.messages)
    return out


def attach_request(**fields: Any) -> ShmAttachRequest:
    """Client 7's producer attach to stream 10000 (correlation 1, layout 0); ``fields`` override."""
    base: dict[str, Any] = {
        "correlation_id": 1,
        "stream_id": 10000,
        "client_id": 7,
        "role": Role.PRODUCER,
        "expected_layout_version": 0,
    }
    base.update(fields)
    return ShmAttachRequest(**base)
