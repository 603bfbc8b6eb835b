"""``decide_attach``: every check of driver-behaviour.md §3, in the table's order, with no I/O.

The function only reads a snapshot of what the driver holds (``AttachContext``) and returns
either a ``Reject`` (code and exact text) or an ``AttachPlan`` saying what to do. Every check,
including producer exclusivity, hugepages and the desired node id, runs before the driver
touches anything, so a rejected attach leaves no stream, epoch, lease id or node id behind
(A-5). Provisioning (#12) and node id allocation (#13) are performed by the driver after the
plan; their failures are reported with ``REJECT_*`` texts from this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from actors.driver.ids import NODE_ID_NULL
from messages.control import HugepagesPolicy, PublishMode, ResponseCode, Role

if TYPE_CHECKING:
    from collections.abc import Container, Mapping

    from messages.control import ShmAttachRequest
    from tensorpool_config.model import DriverConfig

LAYOUT_VERSION: Final = 1  # the SHM layout version this driver provisions

TEXT_DRAINING: Final = "driver draining"
TEXT_INVALID_ROLE: Final = "invalid role"
TEXT_CLIENT_ID_ZERO: Final = "client_id must be non-zero"
TEXT_PUBLISH_MODE: Final = "unsupported publish_mode"
TEXT_HUGEPAGES_POLICY: Final = "unknown hugepages policy"
TEXT_CLIENT_ATTACHED: Final = "client_id already attached"
TEXT_LAYOUT: Final = "layout_version mismatch"
TEXT_NOT_PROVISIONED: Final = "stream not provisioned"
TEXT_PROFILE_NOT_FOUND: Final = "profile not found"
TEXT_RANGE_NOT_CONFIGURED: Final = "stream_id_range not configured"
TEXT_RANGE_EXHAUSTED: Final = "stream_id_range exhausted"
TEXT_NO_POOLS: Final = "stream has no payload pools"
TEXT_PRODUCER_ATTACHED: Final = "producer already attached"
TEXT_HUGEPAGES_UNAVAILABLE: Final = "hugepages not available"
TEXT_STANDARD_REQUESTED: Final = "standard pages requested"
TEXT_NODE_ID_UNAVAILABLE: Final = "node_id unavailable"
TEXT_PROVISION_PREFIX: Final = "failed to provision SHM: "
TEXT_NODE_ID_ALLOCATION: Final = "node_id allocation failed"
TEXT_UNSUPPORTED_VERSION: Final = "unsupported driver schema version"


class StreamView(Protocol):
    """What the checks need to know about an existing stream."""

    @property
    def profile_name(self) -> str: ...
    @property
    def epoch(self) -> int: ...
    @property
    def hugepages(self) -> bool: ...
    @property
    def producer_busy(self) -> bool:
        """An active, pending or still-settling producer lease holds the stream."""
        ...


class DynamicIds(Protocol):
    """The dynamic stream id allocator, queried without taking an id."""

    @property
    def configured(self) -> bool: ...

    def candidate(self, requested: int = 0, used_count: int | None = None) -> int | None: ...


class NodeIds(Protocol):
    def is_available(self, node_id: int, now_ns: int) -> bool: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class AttachContext:
    """A read-only view of the driver's state at the time of the request."""

    config: DriverConfig
    clients_in_use: Container[int]  # active and pending attaches
    streams: Mapping[int, StreamView]
    dynamic_ids: DynamicIds
    node_ids: NodeIds
    hugepages_capable: bool  # shm.base_dir is on hugetlbfs, computed once at start


@dataclass(frozen=True, slots=True)
class Reject:
    code: ResponseCode
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AttachPlan:
    """A request that passed every check: what the driver must now do."""

    stream_id: int
    role: Role
    profile: str
    create_dynamic: bool  # register a new dynamic stream with ``profile``
    desired_node_id: int | None


def _effective_publish_mode(value: PublishMode | int | None) -> PublishMode | None:
    if value is None or value == 255:
        return PublishMode.REQUIRE_EXISTING
    if value in (PublishMode.REQUIRE_EXISTING, PublishMode.EXISTING_OR_CREATE):
        return PublishMode(value)
    return None


def decide_hugepages(
    policy: HugepagesPolicy,
    shm_require: bool,
    capable: bool,
    stream: StreamView | None,
) -> Reject | bool:
    """§3.2: the regions' hugepages flag, or the reject.

    Files on hugetlbfs are huge-page backed whatever the client asked, so a stream's flag is
    the capability; what remains to decide is whether the request accepts it.
    """
    want: bool | None
    if policy == HugepagesPolicy.HUGEPAGES:
        want = True
    elif policy == HugepagesPolicy.STANDARD:
        want = False
    else:
        want = True if shm_require else None
    if want is True and not capable:
        return Reject(ResponseCode.REJECTED, TEXT_HUGEPAGES_UNAVAILABLE)
    if want is False and (capable or shm_require):
        return Reject(ResponseCode.REJECTED, TEXT_STANDARD_REQUESTED)
    if stream is not None and stream.epoch != 0 and want is not None and want != stream.hugepages:
        text = TEXT_HUGEPAGES_UNAVAILABLE if want else TEXT_STANDARD_REQUESTED
        return Reject(ResponseCode.REJECTED, text)
    if stream is not None and stream.epoch != 0:
        return stream.hugepages
    return capable if want is None else want


def _lookup_stream(
    req: ShmAttachRequest, mode: PublishMode, ctx: AttachContext
) -> Reject | tuple[int, str, bool]:
    """§3.1 and A-2: (stream id, profile, create) or the reject."""
    existing = ctx.streams.get(req.stream_id)
    if existing is not None:
        return req.stream_id, existing.profile_name, False
    policies = ctx.config.policies
    if not policies.allow_dynamic_streams or mode == PublishMode.REQUIRE_EXISTING:
        return Reject(ResponseCode.REJECTED, TEXT_NOT_PROVISIONED)
    if policies.default_profile not in ctx.config.profiles:
        return Reject(ResponseCode.INVALID_PARAMS, TEXT_PROFILE_NOT_FOUND)
    if not ctx.dynamic_ids.configured:
        return Reject(ResponseCode.INVALID_PARAMS, TEXT_RANGE_NOT_CONFIGURED)
    stream_id = ctx.dynamic_ids.candidate(req.stream_id, len(ctx.streams))
    if stream_id is None:
        return Reject(ResponseCode.INVALID_PARAMS, TEXT_RANGE_EXHAUSTED)
    return stream_id, policies.default_profile, True


def _check_request(  # noqa: PLR0911 - one return per check of the spec table
    req: ShmAttachRequest, ctx: AttachContext
) -> Reject | tuple[Role, PublishMode, HugepagesPolicy]:
    """Checks 1-6: the request itself and the driver's state, before any stream lookup.

    Check 0 (draining) is the Draining state's own attach row (``machine.py``).
    """
    if req.role not in (Role.PRODUCER, Role.CONSUMER):
        return Reject(ResponseCode.INVALID_PARAMS, TEXT_INVALID_ROLE)
    role = Role(req.role)
    if req.client_id == 0:
        return Reject(ResponseCode.INVALID_PARAMS, TEXT_CLIENT_ID_ZERO)
    mode = _effective_publish_mode(req.publish_mode)
    if mode is None:
        return Reject(ResponseCode.UNSUPPORTED, TEXT_PUBLISH_MODE)
    if req.require_hugepages not in (
        HugepagesPolicy.UNSPECIFIED,
        HugepagesPolicy.STANDARD,
        HugepagesPolicy.HUGEPAGES,
    ):
        return Reject(ResponseCode.INVALID_PARAMS, TEXT_HUGEPAGES_POLICY)
    if req.client_id in ctx.clients_in_use:
        return Reject(ResponseCode.REJECTED, TEXT_CLIENT_ATTACHED)
    if req.expected_layout_version not in (0, LAYOUT_VERSION):
        return Reject(ResponseCode.REJECTED, TEXT_LAYOUT)
    return role, mode, HugepagesPolicy(req.require_hugepages)


def decide_attach(  # noqa: PLR0911 - one return per check of the spec table
    req: ShmAttachRequest, ctx: AttachContext, now_ns: int
) -> Reject | AttachPlan:
    """Run checks 0-11 of §3 in order; the first failure is the answer."""
    checked = _check_request(req, ctx)
    if isinstance(checked, Reject):
        return checked
    role, mode, policy = checked
    found = _lookup_stream(req, mode, ctx)
    if isinstance(found, Reject):
        return found
    stream_id, profile_name, create = found
    profile = ctx.config.profiles.get(profile_name)
    if profile is None:
        return Reject(ResponseCode.INVALID_PARAMS, TEXT_PROFILE_NOT_FOUND)
    if not profile.payload_pools:
        return Reject(ResponseCode.INVALID_PARAMS, TEXT_NO_POOLS)
    stream = None if create else ctx.streams[stream_id]
    if role == Role.PRODUCER and stream is not None and stream.producer_busy:
        return Reject(ResponseCode.REJECTED, TEXT_PRODUCER_ATTACHED)
    hugepages = decide_hugepages(  # the stream's regions follow its profile: a check only
        policy, ctx.config.shm.require_hugepages, ctx.hugepages_capable, stream
    )
    if isinstance(hugepages, Reject):
        return hugepages
    desired = req.desired_node_id
    if desired == NODE_ID_NULL:
        desired = None
    if desired is not None and not ctx.node_ids.is_available(desired, now_ns):
        return Reject(ResponseCode.REJECTED, TEXT_NODE_ID_UNAVAILABLE)
    return AttachPlan(
        stream_id=stream_id,
        role=role,
        profile=profile_name,
        create_dynamic=create,
        desired_node_id=desired,
    )
