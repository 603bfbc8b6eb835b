"""Files the driver provisions for the built-in profile, checked as the reference mappers do."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from shm import ProvisionedEpoch, ProvisionRequest, provision_epoch
from shm.superblock import header_region_size, pool_region_size
from tensorpool_config import default_config
from tests.interop_ref import peer_rules


@pytest.fixture
def base(tmp_path: Path) -> Path:
    directory = Path(os.path.realpath(tmp_path)) / "shm"
    directory.mkdir()
    return directory


def _provision(base: Path, permissions_mode: int) -> tuple[ProvisionRequest, ProvisionedEpoch]:
    cfg = default_config(env={})
    profile = cfg.profiles[cfg.streams["default"].profile]
    req = ProvisionRequest(
        base_dir=base, namespace=cfg.shm.namespace, allowed_base_dirs=(base,),
        stream_id=cfg.streams["default"].stream_id, epoch=time.monotonic_ns(),
        header_nslots=profile.header_nslots,
        pools=tuple((p.pool_id, p.stride_bytes) for p in profile.payload_pools),
        permissions_mode=permissions_mode, prefault=True, mlock=False, hugepages=False,
        pid=os.getpid(), now_ns=time.monotonic_ns())
    return req, provision_epoch(req)


def test_default_profile_regions_pass_every_mapper_check(base: Path) -> None:
    cfg = default_config(env={})
    req, epoch = _provision(base, cfg.shm.permissions_mode)
    common = {"epoch": req.epoch, "stream_id": req.stream_id, "nslots": req.header_nslots}
    header = {**common, "region_type": 1, "pool_id": 0, "slot_bytes": 256, "stride_bytes": 0,
              "size": header_region_size(req.header_nslots)}
    assert peer_rules.region_file(epoch.header_uri, (str(base),), header) == []
    for pool in epoch.pools:
        # Julia consumers require slotBytes == stride for pools.
        expected = {**common, "region_type": 2, "pool_id": pool.pool_id,
                    "slot_bytes": pool.stride_bytes, "stride_bytes": pool.stride_bytes,
                    "size": pool_region_size(req.header_nslots, pool.stride_bytes)}
        assert peer_rules.region_file(pool.uri, (str(base),), expected) == []
        assert pool.stride_bytes >= 64
        assert pool.stride_bytes % 64 == 0


def test_world_bits_in_the_mode_are_what_c_clients_refuse(base: Path) -> None:
    req, epoch = _provision(base, 0o664)
    header = {"epoch": req.epoch, "stream_id": req.stream_id, "nslots": req.header_nslots,
              "region_type": 1, "pool_id": 0, "slot_bytes": 256, "stride_bytes": 0,
              "size": header_region_size(req.header_nslots)}
    problems = peer_rules.region_file(epoch.header_uri, (str(base),), header)
    assert any("'other' bits" in p for p in problems)
