"""Python client of the tensorpool driver: control plane, producer and consumer.

``DriverClient`` attaches, detaches and keeps leases alive over Aeron; ``Producer`` claims
slots of a stream's shared memory as writable arrays (or copies arrays in) and publishes
FrameDescriptors from the caller's thread; ``Consumer`` maps the stream read-only, polls
descriptors on the caller's thread and returns zero-copy frames, reporting every lost one.
Nothing here imports the driver's actors.
"""

from tensorpool_client.aeron_thread import AeronThread, PublicationHandle, SubscriptionHandle
from tensorpool_client.consumer import Consumer, Frame, LostFrames
from tensorpool_client.control import ClientStats, DriverClient, default_aeron_dir
from tensorpool_client.direct import DirectPublication, DirectSubscription
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
from tensorpool_client.producer import FrameClaim, Producer

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
    "RequestTimeout",
    "SubscriptionHandle",
    "default_aeron_dir",
]
