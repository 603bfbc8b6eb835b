"""Python client of the tensorpool driver: control plane, producer and consumer.

``DriverClient`` attaches, detaches and keeps leases alive over Aeron; ``Producer`` writes
frames into a stream's shared memory and publishes FrameDescriptors; ``Consumer`` maps the
stream read-only and returns zero-copy frames. Nothing here imports the driver's actors.
Those load on first use (pyaeron, numpy), so the admin CLI (``tensorpool_client.admin_cli``,
what ``launcher.py status`` runs) starts without them.
"""

from importlib import import_module
from typing import TYPE_CHECKING

from tensorpool_client.errors import (
    AttachRejected,
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
    from tensorpool_client.consumer import Consumer, Frame
    from tensorpool_client.control import ClientStats, DriverClient, default_aeron_dir
    from tensorpool_client.producer import Producer

_LAZY = {
    **dict.fromkeys(
        ("AeronThread", "PublicationHandle", "SubscriptionHandle"), "tensorpool_client.aeron_thread"
    ),
    **dict.fromkeys(("Consumer", "Frame"), "tensorpool_client.consumer"),
    **dict.fromkeys(
        ("ClientStats", "DriverClient", "default_aeron_dir"), "tensorpool_client.control"
    ),
    "Producer": "tensorpool_client.producer",
}

__all__ = [
    "AeronThread",
    "AttachRejected",
    "ClientClosed",
    "ClientError",
    "ClientStats",
    "Consumer",
    "DetachRejected",
    "DriverClient",
    "Frame",
    "FrameOverwritten",
    "InvalidResponse",
    "Lease",
    "LeaseLost",
    "Producer",
    "PublicationHandle",
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
