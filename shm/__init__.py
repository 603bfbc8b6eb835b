"""Shared-memory region files: paths, URIs, superblocks, provisioning, mapping, ring, GC.

The numpy-backed parts (provisioning, mapping, ring, slot layout, GC) load on first use, so
the light ones (``shm.paths``, ``shm.instance_lock``) can be imported by ``launcher.py
status`` without numpy.
"""

from importlib import import_module
from typing import TYPE_CHECKING

from shm.errors import (
    HugepagesUnavailable,
    PathError,
    ProvisionError,
    RegionValidationError,
    ShmError,
    UriError,
)
from shm.hugepages import is_hugetlbfs
from shm.paths import (
    directory_mode,
    epoch_dir,
    header_ring_path,
    pool_path,
    stream_dir,
    user_dir_name,
)
from shm.seqlock import ReadStatus
from shm.superblock import RegionType, Superblock
from shm.uri import RegionUri, format_region_uri, parse_region_uri

if TYPE_CHECKING:
    from shm.gc import collect_epochs
    from shm.mapping import ANY_UID, ExpectedRegion, MappedRegion, announced_regions, open_region
    from shm.provision import (
        PoolRegion,
        ProvisionedEpoch,
        ProvisionRequest,
        next_epoch,
        provision_epoch,
    )
    from shm.ring import Frame, HeaderRing, PayloadPoolView
    from shm.slot_layout import TensorDescriptor

_LAZY = {
    "collect_epochs": "shm.gc",
    **dict.fromkeys(
        ("ANY_UID", "ExpectedRegion", "MappedRegion", "announced_regions", "open_region"),
        "shm.mapping",
    ),
    **dict.fromkeys(
        ("PoolRegion", "ProvisionedEpoch", "ProvisionRequest", "next_epoch", "provision_epoch"),
        "shm.provision",
    ),
    **dict.fromkeys(("Frame", "HeaderRing", "PayloadPoolView"), "shm.ring"),
    "TensorDescriptor": "shm.slot_layout",
}

__all__ = [
    "ANY_UID",
    "ExpectedRegion",
    "Frame",
    "HeaderRing",
    "HugepagesUnavailable",
    "MappedRegion",
    "PathError",
    "PayloadPoolView",
    "PoolRegion",
    "ProvisionError",
    "ProvisionRequest",
    "ProvisionedEpoch",
    "ReadStatus",
    "RegionType",
    "RegionUri",
    "RegionValidationError",
    "ShmError",
    "Superblock",
    "TensorDescriptor",
    "UriError",
    "announced_regions",
    "collect_epochs",
    "directory_mode",
    "epoch_dir",
    "format_region_uri",
    "header_ring_path",
    "is_hugetlbfs",
    "next_epoch",
    "open_region",
    "parse_region_uri",
    "pool_path",
    "provision_epoch",
    "stream_dir",
    "user_dir_name",
]

if not TYPE_CHECKING:  # mypy reads the imports above, so an unknown name stays an error

    def __getattr__(name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'shm' has no attribute {name!r}")
        value = getattr(import_module(module), name)
        globals()[name] = value
        return value
