"""What a mapper checks before trusting a region (shm-layout.md §8): every rejection path."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from shm import (
    ANY_UID,
    ExpectedRegion,
    Frame,
    ProvisionedEpoch,
    ProvisionRequest,
    RegionType,
    RegionValidationError,
    TensorDescriptor,
    announced_regions,
    format_region_uri,
    open_region,
    parse_region_uri,
    provision_epoch,
)

RequestFor = Callable[..., ProvisionRequest]


@pytest.fixture
def epoch(request_for: RequestFor) -> ProvisionedEpoch:
    return provision_epoch(request_for(prefault=False))


def _ring_expected(provisioned: ProvisionedEpoch, /, **overrides: object) -> ExpectedRegion:
    values: dict[str, object] = {
        "region_type": RegionType.HEADER_RING,
        "stream_id": 10000,
        "epoch": provisioned.epoch,
        "nslots": 8,
        **overrides,
    }
    return ExpectedRegion(**values)  # type: ignore[arg-type]


def _pool_expected(provisioned: ProvisionedEpoch, /, **overrides: object) -> ExpectedRegion:
    values: dict[str, object] = {
        "region_type": RegionType.PAYLOAD_POOL,
        "stream_id": 10000,
        "epoch": provisioned.epoch,
        "nslots": 8,
        "pool_id": 2,
        "stride_bytes": 4096,
        **overrides,
    }
    return ExpectedRegion(**values)  # type: ignore[arg-type]


def _ring_path(epoch: ProvisionedEpoch) -> Path:
    return Path(parse_region_uri(epoch.header_uri).path)


def _rejected(uri: str, expected: ExpectedRegion, base: Path, **kwargs: object) -> str:
    with pytest.raises(RegionValidationError) as info:
        open_region(uri, expected, allowed_base_dirs=(base,), **kwargs)  # type: ignore[arg-type]
    return info.value.check


def test_valid_regions_map_and_carry_frames(epoch: ProvisionedEpoch, base: Path) -> None:
    with (
        open_region(
            epoch.header_uri, _ring_expected(epoch), allowed_base_dirs=(base,), writable=True
        ) as ring_region,
        open_region(
            epoch.pools[1].uri, _pool_expected(epoch), allowed_base_dirs=(base,), writable=True
        ) as pool_region,
    ):
        assert ring_region.pid == os.getpid()
        ring, pool = ring_region.header_ring(), pool_region.payload_pool()
        tensor = TensorDescriptor(dtype=1, major_order=1, dims=(5,))
        ring.write_frame(9, pool, b"hello", tensor=tensor, timestamp_ns=3, meta_version=4)
        frame = ring.read_frame(9, {2: pool})
        assert isinstance(frame, Frame)
        assert (frame.payload, frame.slot_index, frame.pool_id, frame.tensor) == (
            b"hello",
            1,
            2,
            tensor,
        )
    assert ring_region.mmap.closed
    assert pool_region.mmap.closed


def test_read_only_mapping_reads_what_a_writer_wrote(epoch: ProvisionedEpoch, base: Path) -> None:
    bases = (base,)
    with (
        open_region(
            epoch.header_uri, _ring_expected(epoch), writable=True, allowed_base_dirs=bases
        ) as w_ring,
        open_region(
            epoch.pools[1].uri, _pool_expected(epoch), writable=True, allowed_base_dirs=bases
        ) as w_pool,
        open_region(epoch.header_uri, _ring_expected(epoch), allowed_base_dirs=bases) as r_ring,
        open_region(epoch.pools[1].uri, _pool_expected(epoch), allowed_base_dirs=bases) as r_pool,
    ):
        tensor = TensorDescriptor(dtype=9, major_order=1, dims=(2, 2))
        w_ring.header_ring().write_frame(
            3,
            w_pool.payload_pool(),
            bytes(range(16)),
            tensor=tensor,
            timestamp_ns=1,
            meta_version=1,
        )
        reader = r_ring.header_ring()
        frame = reader.read_frame(3, {2: r_pool.payload_pool()})
        assert isinstance(frame, Frame)
        assert frame.payload == bytes(range(16))
        with pytest.raises(ValueError, match="read-only"):
            r_pool.payload_pool().slot(0)[0] = 1


def test_activity_refresh_is_visible_to_new_mappers(epoch: ProvisionedEpoch, base: Path) -> None:
    with open_region(
        epoch.header_uri, _ring_expected(epoch), allowed_base_dirs=(base,), writable=True
    ) as region:
        region.touch_activity(123_456)
    again = open_region(
        epoch.header_uri, _ring_expected(epoch, activity_window_ns=None), allowed_base_dirs=(base,)
    )
    assert again.superblock.activity_timestamp_ns == 123_456
    again.close()


def test_malformed_uri(epoch: ProvisionedEpoch, base: Path) -> None:
    assert _rejected(epoch.header_uri + "|x=y", _ring_expected(epoch), base) == "uri"


def test_dot_dot_traversal(epoch: ProvisionedEpoch, base: Path) -> None:
    path = _ring_path(epoch)
    uri = f"shm:file?path={path.parent}/../{path.parent.name}/header.ring"
    assert _rejected(uri, _ring_expected(epoch), base) == "uri"


def test_outside_the_allowed_base(epoch: ProvisionedEpoch, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    assert _rejected(epoch.header_uri, _ring_expected(epoch), other) == "containment"


def test_prefix_that_is_not_a_directory_boundary(epoch: ProvisionedEpoch, base: Path) -> None:
    sibling = base.parent / (base.name + "x")
    sibling.mkdir()
    target = sibling / "header.ring"
    os.link(_ring_path(epoch), target)
    assert _rejected(format_region_uri(str(target)), _ring_expected(epoch), base) == "containment"


def test_symlink_inside_the_base_pointing_outside(
    epoch: ProvisionedEpoch, base: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.ring"
    outside.write_bytes(_ring_path(epoch).read_bytes())
    link = base / "link.ring"
    link.symlink_to(outside)
    assert _rejected(format_region_uri(str(link)), _ring_expected(epoch), base) == "containment"


def test_symlink_outside_the_base_pointing_in(
    epoch: ProvisionedEpoch, base: Path, tmp_path: Path
) -> None:
    link = tmp_path / "alias"
    link.symlink_to(base)
    uri = format_region_uri(str(link / _ring_path(epoch).relative_to(base)))
    assert _rejected(uri, _ring_expected(epoch), base) == "symlink"


@pytest.mark.parametrize("level", [0, 1, 2, 3, 4])
def test_symlink_at_each_level_below_the_base(
    epoch: ProvisionedEpoch, base: Path, level: int
) -> None:
    """Levels: user dir, namespace, stream, epoch, file; each replaced by a symlink to itself."""
    path = _ring_path(epoch)
    component = [path.parents[3], path.parents[2], path.parents[1], path.parent, path][level]
    real = component.with_name(component.name + "-real")
    component.rename(real)
    component.symlink_to(real.name)
    assert _rejected(epoch.header_uri, _ring_expected(epoch), base) == "symlink"


def test_fifo_is_not_a_regular_file(epoch: ProvisionedEpoch, base: Path) -> None:
    fifo = _ring_path(epoch).with_name("fifo.ring")
    os.mkfifo(fifo)
    assert _rejected(format_region_uri(str(fifo)), _ring_expected(epoch), base) == "regular_file"


def test_missing_file(epoch: ProvisionedEpoch, base: Path) -> None:
    missing = format_region_uri(str(_ring_path(epoch).with_name("none.ring")))
    assert _rejected(missing, _ring_expected(epoch), base) == "regular_file"


def test_required_hugepages_on_a_normal_filesystem(epoch: ProvisionedEpoch, base: Path) -> None:
    uri = epoch.header_uri + "|require_hugepages=true"
    assert _rejected(uri, _ring_expected(epoch), base) == "hugepages"


def test_wrong_owner(epoch: ProvisionedEpoch, base: Path) -> None:
    expected = _ring_expected(epoch, expected_uid=os.geteuid() + 1)
    assert _rejected(epoch.header_uri, expected, base) == "owner"
    open_region(
        epoch.header_uri, _ring_expected(epoch, expected_uid=ANY_UID), allowed_base_dirs=(base,)
    ).close()


def test_a_failing_mmap_is_a_validation_error(
    epoch: ProvisionedEpoch, base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr("shm.mapping.mmap.mmap", refuse)
    assert _rejected(epoch.header_uri, _ring_expected(epoch), base) == "map"


def test_world_writable_file(epoch: ProvisionedEpoch, base: Path) -> None:
    _ring_path(epoch).chmod(0o666)
    assert _rejected(epoch.header_uri, _ring_expected(epoch), base) == "permissions"


@pytest.mark.parametrize("size", [0, 63, 64, 64 + 7 * 256])
def test_truncated_file(epoch: ProvisionedEpoch, base: Path, size: int) -> None:
    os.truncate(_ring_path(epoch), size)
    assert _rejected(epoch.header_uri, _ring_expected(epoch), base) == "size"


def _patch(path: Path, offset: int, fmt: str, value: int) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(struct.pack(fmt, value))


@pytest.mark.parametrize(("offset", "value"), [(40, 4_000_000), (12, 7)], ids=["pid", "epoch"])
def test_a_superblock_rewritten_in_place_is_seen_by_the_mapping(
    epoch: ProvisionedEpoch, base: Path, offset: int, value: int
) -> None:
    region = open_region(
        epoch.header_uri, _ring_expected(epoch), allowed_base_dirs=(base,), writable=True
    )
    region.touch_activity(1)  # activity is not identity
    assert not region.identity_changed()
    _patch(_ring_path(epoch), offset, "<Q", value)
    assert region.identity_changed()
    region.close()
    assert region.identity_changed()  # nothing left to trust


@pytest.mark.parametrize(
    ("offset", "fmt", "value", "check"),
    [
        (0, "<Q", 0x544F504C53484D32, "magic"),
        (8, "<I", 2, "layout_version"),
        (28, "<I", 6, "nslots"),
        (32, "<I", 128, "slot_bytes"),
        (56, "<Q", 0, "activity"),
    ],
)
def test_corrupted_ring_superblock(
    epoch: ProvisionedEpoch, base: Path, offset: int, fmt: str, *, value: int, check: str
) -> None:
    _patch(_ring_path(epoch), offset, fmt, value)
    assert _rejected(epoch.header_uri, _ring_expected(epoch), base) == check


@pytest.mark.parametrize(
    ("overrides", "check"),
    [
        ({"epoch": 1}, "epoch"),
        ({"stream_id": 10001}, "stream_id"),
        ({"region_type": RegionType.PAYLOAD_POOL, "pool_id": 0, "stride_bytes": 0}, "region_type"),
        ({"nslots": 4}, "nslots"),
        ({"layout_version": 2}, "layout_version"),
    ],
)
def test_ring_superblock_differs_from_the_announce(
    epoch: ProvisionedEpoch, base: Path, overrides: dict[str, object], check: str
) -> None:
    assert _rejected(epoch.header_uri, _ring_expected(epoch, **overrides), base) == check


@pytest.mark.parametrize(
    ("overrides", "check"),
    [
        ({"pool_id": 1}, "pool_id"),
        ({"stride_bytes": 2048}, "slot_bytes"),
        ({"region_type": RegionType.HEADER_RING}, "region_type"),
    ],
)
def test_pool_superblock_differs_from_the_announce(
    epoch: ProvisionedEpoch, base: Path, overrides: dict[str, object], check: str
) -> None:
    assert _rejected(epoch.pools[1].uri, _pool_expected(epoch, **overrides), base) == check


def test_pool_slot_bytes_of_a_c_driver_is_accepted(epoch: ProvisionedEpoch, base: Path) -> None:
    path = Path(parse_region_uri(epoch.pools[1].uri).path)
    _patch(path, 32, "<I", 0xFFFFFFFF)
    open_region(epoch.pools[1].uri, _pool_expected(epoch), allowed_base_dirs=(base,)).close()
    _patch(path, 36, "<I", 2048)
    assert _rejected(epoch.pools[1].uri, _pool_expected(epoch), base) == "stride_bytes"


def test_stale_activity(epoch: ProvisionedEpoch, base: Path) -> None:
    with open_region(
        epoch.header_uri, _ring_expected(epoch, activity_window_ns=None), allowed_base_dirs=(base,)
    ) as region:
        activity = region.superblock.activity_timestamp_ns
    expected = _ring_expected(epoch)
    fresh = activity + 3_000_000_000
    open_region(epoch.header_uri, expected, allowed_base_dirs=(base,), now_ns=fresh).close()
    assert _rejected(epoch.header_uri, expected, base, now_ns=fresh + 1) == "activity"


def test_close_releases_views_before_unmapping(epoch: ProvisionedEpoch, base: Path) -> None:
    region = open_region(epoch.header_uri, _ring_expected(epoch), allowed_base_dirs=(base,))
    ring = region.header_ring()
    assert ring.slots.shape == (8,)
    region.close()
    assert region.mmap.closed
    with pytest.raises(ValueError, match="released"):
        ring.load_seq_commit(0)
    region.close()


def test_announced_regions_pair_each_uri_with_what_it_must_contain() -> None:
    class Pool:
        def __init__(self, pool_id: int, stride: int) -> None:
            self.pool_id, self.pool_nslots, self.stride_bytes = pool_id, 8, stride
            self.region_uri = f"shm:file?path=/x/{pool_id}.pool"

    regions = announced_regions(
        stream_id=7,
        epoch=9,
        header_nslots=8,
        header_uri="shm:file?path=/x/header.ring",
        pools=[Pool(2, 4096), Pool(1, 1024)],
        activity_window_ns=None,
    )
    assert [uri for uri, _ in regions] == [
        "shm:file?path=/x/header.ring",
        "shm:file?path=/x/2.pool",
        "shm:file?path=/x/1.pool",
    ]
    header, second, first = (expected for _, expected in regions)
    assert header == ExpectedRegion(
        region_type=RegionType.HEADER_RING,
        stream_id=7,
        epoch=9,
        nslots=8,
        activity_window_ns=None,
    )
    assert second == ExpectedRegion(
        region_type=RegionType.PAYLOAD_POOL,
        stream_id=7,
        epoch=9,
        nslots=8,
        pool_id=2,
        stride_bytes=4096,
        activity_window_ns=None,
    )
    assert (first.pool_id, first.stride_bytes) == (1, 1024)
