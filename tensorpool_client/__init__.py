"""Python client of the tensorpool driver: control plane, producer and consumer.

``DriverClient`` attaches, detaches and keeps leases alive over Aeron; ``Producer`` claims
slots of a stream's shared memory as writable arrays (or copies arrays in) and publishes
FrameDescriptors from the caller's thread; ``Consumer`` maps the stream read-only, polls
descriptors on the caller's thread and returns zero-copy frames, reporting every lost one.
Relays (the bridge) copy raw slots out with ``Consumer.read_slot_into`` and write frames that
keep their source's seq and header with ``Producer.relay``.
Nothing here imports the driver's actors.
Those load on first use (pyaeron, numpy), so the admin CLI (``tensorpool_client.admin_cli``,
what ``launcher.py status`` runs) starts without them.
"""

from importlib import import_module
from typing import TYPE_CHECKING

from tensorpool_client.errors import (
    AttachRejected,
    BackPressured,
    ClientClosed,
    ClientError,
    DetachRejected,
    FrameOverwritten,
    InvalidResponse,
    LeaseLost,
    RequestTimeout,
)
from tensorpool_client.lease import Lease

if TYPE_CHECKING:
    from tensorpool_client.aeron_thread import AeronThread, PublicationHandle, SubscriptionHandle
    from tensorpool_client.consumer import Consumer, Frame, LostFrames
    from tensorpool_client.control import ClientStats, DriverClient, default_aeron_dir
    from tensorpool_client.direct import DirectPublication, DirectSubscription
    from tensorpool_client.producer import FrameClaim, Producer, RelayLayout

_LAZY = {
    **dict.fromkeys(
        ("AeronThread", "PublicationHandle", "SubscriptionHandle"), "tensorpool_client.aeron_thread"
    ),
    **dict.fromkeys(("Consumer", "Frame", "LostFrames"), "tensorpool_client.consumer"),
    **dict.fromkeys(
        ("ClientStats", "DriverClient", "default_aeron_dir"), "tensorpool_client.control"
    ),
    **dict.fromkeys(("DirectPublication", "DirectSubscription"), "tensorpool_client.direct"),
    **dict.fromkeys(("FrameClaim", "Producer", "RelayLayout"), "tensorpool_client.producer"),
}

__all__ = [
    "AeronThread",
    "AttachRejected",
    "BackPressured",
    "ClientClosed",
    "ClientError",
    "ClientStats",
    "Consumer",
    "DetachRejected",
    "DirectPublication",
    "DirectSubscription",
    "DriverClient",
    "Frame",
    "FrameClaim",
    "FrameOverwritten",
    "InvalidResponse",
    "Lease",
    "LeaseLost",
    "LostFrames",
    "Producer",
    "PublicationHandle",
    "RelayLayout",
    "RequestTimeout",
    "SubscriptionHandle",
    "default_aeron_dir",
]

if not TYPE_CHECKING:  # mypy reads the imports above, so an unknown name stays an error

    def __getattr__(name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'tensorpool_client' has no attribute {name!r}")
        value = getattr(import_module(module), name)
        globals()[name] = value
        return value
