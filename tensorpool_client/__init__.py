"""Python client of the tensorpool driver: control plane, producer and consumer.

``DriverClient`` attaches, detaches and keeps leases alive over Aeron; ``Producer`` writes
frames into a stream's shared memory and publishes FrameDescriptors; ``Consumer`` maps the
stream read-only and returns zero-copy frames. Nothing here imports the driver's actors.
"""

from tensorpool_client.aeron_thread import AeronThread, PublicationHandle, SubscriptionHandle
from tensorpool_client.consumer import Consumer, Frame
from tensorpool_client.control import ClientStats, DriverClient, default_aeron_dir
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
from tensorpool_client.producer import Producer

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
