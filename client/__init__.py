"""Python client of the tensorpool driver: control plane, producer and consumer.

``DriverClient`` attaches, detaches and keeps leases alive over Aeron; ``Producer`` writes
frames into a stream's shared memory and publishes FrameDescriptors; ``Consumer`` maps the
stream read-only and returns zero-copy frames. Nothing here imports the driver's actors.
"""

from client.aeron_thread import AeronThread, PublicationHandle, SubscriptionHandle
from client.consumer import Consumer, Frame
from client.control import ClientStats, DriverClient, default_aeron_dir
from client.errors import (
    AttachRejected,
    ClientClosed,
    ClientError,
    DetachRejected,
    FrameOverwritten,
    InvalidResponse,
    LeaseLost,
    RequestTimeout,
)
from client.lease import Lease
from client.producer import Producer

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
