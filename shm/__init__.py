"""Shared-memory region files: paths, URIs, superblocks, provisioning, mapping, ring, GC."""

from shm.errors import (
    HugepagesUnavailable,
    PathError,
    ProvisionError,
    RegionValidationError,
    ShmError,
    UriError,
)
from shm.gc import collect_epochs
from shm.hugepages import is_hugetlbfs
from shm.mapping import ANY_UID, ExpectedRegion, MappedRegion, announced_regions, open_region
from shm.paths import (
    directory_mode,
    epoch_dir,
    header_ring_path,
    pool_path,
    stream_dir,
    user_dir_name,
)
from shm.provision import (
    PoolRegion,
    ProvisionedEpoch,
    ProvisionRequest,
    next_epoch,
    provision_epoch,
)
from shm.ring import Frame, HeaderRing, PayloadPoolView
from shm.seqlock import ReadStatus
from shm.slot_layout import TensorDescriptor
from shm.superblock import RegionType, Superblock
from shm.uri import RegionUri, format_region_uri, parse_region_uri

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
