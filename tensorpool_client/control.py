"""``DriverClient``: the control-plane client of the tensorpool driver (driver-protocol.md §4-§5).

All Aeron objects live on one ``AeronThread``; the public methods are called from user threads
and wait on futures. Requests get fresh correlation ids; responses are matched only against
this client's outstanding ids; notices (revokes, shutdown, announces, consumer configs) are
recorded in a ``NoticeBoard``; held leases are kept alive from the Aeron thread.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Self

import pyaeron

import messages
from messages import (
    ConsumerConfig,
    ConsumerHello,
    DecodeError,
    HugepagesPolicy,
    ResponseCode,
    Role,
    ShmAttachRequest,
    ShmAttachResponse,
    ShmDetachRequest,
    ShmDetachResponse,
    ShmDriverShutdown,
    ShmDriverShutdownRequest,
    ShmLeaseKeepalive,
    ShmLeaseRevoked,
    ShmPoolAnnounce,
    ShutdownReason,
    UnknownMessage,
)
from tensorpool_client.aeron_thread import AeronThread, PublicationHandle, SubscriptionHandle
from tensorpool_client.errors import AttachRejected, ClientClosed, DetachRejected, RequestTimeout
from tensorpool_client.lease import Lease, lease_from_response
from tensorpool_client.notices import LeaseKey, NoticeBoard, key_of
from tensorpool_client.requests import CorrelationIds, PendingRequests

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from messages import PublishMode
    from tensorpool_client.direct import DirectPublication, DirectSubscription

log = logging.getLogger(__name__)

DEFAULT_CHANNEL: Final = "aeron:ipc?term-length=4m"
CLIENT_ID_TAKEN: Final = "client_id already attached"
MAX_CLIENT_ID_RETRIES: Final = 8
MAX_U32: Final = 0xFFFFFFFF


def default_aeron_dir() -> str:
    """``$AERON_DIR``, else Aeron's default directory: where a driver started with built-in
    settings (``python launcher.py``) runs its media driver, so clients find it unconfigured."""
    return os.environ.get("AERON_DIR") or pyaeron.default_path()


def random_client_id() -> int:
    """A random non-zero uint32 (the auto-assign rule of driver-protocol.md §4)."""
    return secrets.randbelow(MAX_U32) + 1


@dataclass(slots=True)
class ClientStats:
    """Counters of what the poll thread saw and did (never raised, only counted)."""

    undecodable: int = 0
    unknown: int = 0
    ignored: int = 0
    keepalives_sent: int = 0


class DriverClient:
    """Attach, detach and keep leases alive; record every driver notice."""

    def __init__(
        self, aeron_dir: str, *, control_channel: str = DEFAULT_CHANNEL,
        control_stream_id: int = 1000, announce_channel: str | None = None,
        announce_stream_id: int = 1001, client_id: int = 0, keepalive_interval_ms: int = 1000,
        auto_keepalive: bool = True,
    ) -> None:
        self.control_channel = control_channel
        self.control_stream_id = control_stream_id
        self.announce_channel = control_channel if announce_channel is None else announce_channel
        self.announce_stream_id = announce_stream_id
        self.auto_client_id = client_id == 0
        self._client_id = random_client_id() if client_id == 0 else client_id
        self.keepalive_interval_ns = keepalive_interval_ms * 1_000_000
        self.auto_keepalive = auto_keepalive
        self.stats = ClientStats()
        self.notices = NoticeBoard(join_monotonic_ns=time.monotonic_ns())
        self._thread = AeronThread(aeron_dir)
        self._ids = CorrelationIds()
        self._attaches: PendingRequests[ShmAttachResponse] = PendingRequests()
        self._detaches: PendingRequests[ShmDetachResponse] = PendingRequests()
        self._lock = threading.Lock()
        self._held: dict[LeaseKey, Lease] = {}
        self._no_keepalive: set[LeaseKey] = set()
        self._paused = False
        self._next_keepalive_ns = 0
        self._control: PublicationHandle | None = None
        self._started = False
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Connect to the media driver and subscribe to the control and announce streams."""
        if self._closed:
            raise ClientClosed("client was closed")
        if self._started:
            return self
        self._started = True
        try:
            self._thread.start()
            self._thread.subscription(self.control_channel, self.control_stream_id,
                                      handler=self._on_fragment)
            if (self.announce_channel, self.announce_stream_id) != (
                self.control_channel, self.control_stream_id
            ):
                self._thread.subscription(self.announce_channel, self.announce_stream_id,
                                          handler=self._on_fragment)
            self._control = self._thread.publication(self.control_channel,
                                                     self.control_stream_id)
            self._thread.add_duty(self._keepalive_duty)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop the poll thread and close Aeron (idempotent; held leases simply lapse)."""
        self._closed = True
        self._thread.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def client_id(self) -> int:
        """The client id the next attach will use."""
        return self._client_id

    @property
    def aeron(self) -> AeronThread:
        """The thread that owns this client's Aeron objects (for ``call`` and duties)."""
        return self._thread

    # ------------------------------------------------------------------ requests

    def attach(
        self, stream_id: int, role: Role, *, publish_mode: PublishMode | None = None,
        require_hugepages: HugepagesPolicy = HugepagesPolicy.UNSPECIFIED,
        expected_layout_version: int = 0, desired_node_id: int | None = None,
        timeout: float = 5.0,
    ) -> Lease:
        """Attach and return the lease; AttachRejected on a non-OK answer."""
        deadline = time.monotonic() + timeout
        for _attempt in range(MAX_CLIENT_ID_RETRIES):
            client_id = self._client_id
            cid = self._ids.next()
            request = ShmAttachRequest(
                correlation_id=cid, stream_id=stream_id, client_id=client_id, role=role,
                expected_layout_version=expected_layout_version, publish_mode=publish_mode,
                require_hugepages=require_hugepages, desired_node_id=desired_node_id,
            )
            resp = self._request(self._attaches, cid, messages.encode(request), deadline)
            if resp.code == ResponseCode.OK:
                lease = lease_from_response(resp, client_id=client_id, role=Role(role))
                with self._lock:
                    self._held[key_of(lease)] = lease
                return lease
            taken = resp.code == ResponseCode.REJECTED and resp.error_message == CLIENT_ID_TAKEN
            if not (taken and self.auto_client_id):
                raise AttachRejected(resp.code, resp.error_message, resp)
            with self._lock:
                if self._client_id == client_id:
                    self._client_id = random_client_id()
        raise AttachRejected(resp.code, resp.error_message, resp)

    def detach(self, lease: Lease, timeout: float = 5.0) -> ShmDetachResponse:
        """Detach ``lease``; DetachRejected on a non-OK answer. Keepalives stop either way."""
        cid = self._ids.next()
        request = ShmDetachRequest(correlation_id=cid, lease_id=lease.lease_id,
                                   stream_id=lease.stream_id, client_id=lease.client_id,
                                   role=lease.role)
        try:
            resp = self._request(self._detaches, cid, messages.encode(request),
                                 time.monotonic() + timeout)
        finally:
            self._forget(lease)
        if resp.code != ResponseCode.OK:
            raise DetachRejected(resp.code, resp.error_message, resp)
        return resp

    def keepalive(self, lease: Lease) -> bool:
        """Send one ShmLeaseKeepalive for ``lease`` now; True once it is on the stream."""
        return self._pub().offer(self._keepalive_bytes(lease, time.monotonic_ns()))

    def stop_keepalives(self, lease: Lease) -> None:
        """Stop the automatic keepalives of one lease (tests use it to provoke expiry)."""
        with self._lock:
            self._no_keepalive.add(key_of(lease))

    def pause_keepalives(self) -> None:
        """Stop all automatic keepalives until ``resume_keepalives``."""
        self._paused = True

    def resume_keepalives(self) -> None:
        """Undo ``pause_keepalives``."""
        self._paused = False

    def send_raw(self, data: bytes, timeout: float = 1.0) -> bool:
        """Offer arbitrary bytes on the control stream (tests send hostile input with it)."""
        return self._pub().offer(bytes(data), timeout=timeout)

    def send_hello(self, hello: ConsumerHello) -> bool:
        """Offer a ConsumerHello on the control stream."""
        return self._pub().offer(messages.encode(hello))

    def queue_hello(self, hello: ConsumerHello) -> None:
        """Queue a ConsumerHello without waiting (safe on the client's own thread)."""
        self._pub().offer_nowait(messages.encode(hello), drop_if_not_connected=True)

    def send_shutdown_request(
        self, token: str, reason: ShutdownReason = ShutdownReason.ADMIN, error_message: str = "",
    ) -> int:
        """Offer a ShmDriverShutdownRequest (never answered); returns its correlation id."""
        cid = self._ids.next()
        msg = ShmDriverShutdownRequest(correlation_id=cid, reason=reason, token=token,
                                       error_message=error_message)
        if not self._pub().offer(messages.encode(msg)):
            raise RequestTimeout("control publication did not accept the shutdown request")
        return cid

    # ------------------------------------------------------------------ notices

    def wait_for_revoke(self, lease: Lease, timeout: float = 5.0) -> ShmLeaseRevoked:
        """The ShmLeaseRevoked matching ``lease`` (already seen or arriving within timeout)."""
        return self.notices.wait_for_revoke(lease, timeout)

    def wait_for_announce(self, stream_id: int, *, min_epoch: int = 0,
                          timeout: float = 5.0) -> ShmPoolAnnounce:
        """The highest-epoch announce of ``stream_id`` with ``epoch >= min_epoch``."""
        return self.notices.wait_for_announce(stream_id, min_epoch=min_epoch, timeout=timeout)

    def wait_for_shutdown(self, timeout: float = 5.0) -> ShmDriverShutdown:
        """The driver's ShmDriverShutdown."""
        return self.notices.wait_for_shutdown(timeout)

    def latest_announce(self, stream_id: int) -> ShmPoolAnnounce | None:
        """The highest-epoch accepted announce of ``stream_id`` so far."""
        return self.notices.latest_announce(stream_id)

    def lease_valid(self, lease: Lease) -> bool:
        """False once the lease was revoked or the driver shut down."""
        return self.notices.lease_valid(lease)

    # ------------------------------------------------------------------ generic Aeron access

    def publication(self, channel: str, stream_id: int) -> PublicationHandle:
        """A publication owned by this client's Aeron thread (descriptors, QoS, ...)."""
        return self._thread.publication(channel, stream_id)

    def subscription(self, channel: str, stream_id: int, *, capacity: int = 4096,
                     handler: Callable[[bytes], None] | None = None) -> SubscriptionHandle:
        """A subscription polled by this client's Aeron thread."""
        return self._thread.subscription(channel, stream_id, handler=handler, capacity=capacity)

    def direct_publication(self, channel: str, stream_id: int) -> DirectPublication:
        """A publication the caller's threads offer on directly (descriptors, QoS)."""
        return self._thread.direct_publication(channel, stream_id)

    def direct_subscription(self, channel: str, stream_id: int) -> DirectSubscription:
        """A subscription one caller thread at a time polls directly (descriptors, QoS)."""
        return self._thread.direct_subscription(channel, stream_id)

    # ------------------------------------------------------------------ internals

    def _pub(self) -> PublicationHandle:
        if self._control is None or not self._thread.running:
            raise ClientClosed("client is not running")
        return self._control

    def _request[R](self, table: PendingRequests[R], cid: int, data: bytes,
                    deadline: float) -> R:
        fut = table.register(cid)
        try:
            remaining = max(deadline - time.monotonic(), 0.0)
            with self._thread.expect_response():
                if not self._pub().offer(data, timeout=remaining):
                    raise RequestTimeout("control publication did not accept the request")
                return fut.result(max(deadline - time.monotonic(), 0.0))
        except (FutureTimeout, TimeoutError) as exc:
            if not self._thread.running:
                raise ClientClosed("client closed while waiting") from exc
            raise RequestTimeout(f"no response to correlation id {cid}") from exc
        finally:
            table.abandon(cid)

    def _forget(self, lease: Lease) -> None:
        with self._lock:
            self._held.pop(key_of(lease), None)
            self._no_keepalive.discard(key_of(lease))

    def _keepalive_bytes(self, lease: Lease, now_ns: int) -> bytes:
        return messages.encode(ShmLeaseKeepalive(
            lease_id=lease.lease_id, stream_id=lease.stream_id, client_id=lease.client_id,
            role=lease.role, client_timestamp_ns=now_ns,
        ))

    def _keepalive_duty(self, now_ns: int) -> int:
        """On the Aeron thread: one keepalive per held lease every interval."""
        if now_ns < self._next_keepalive_ns:
            return 0
        self._next_keepalive_ns = now_ns + self.keepalive_interval_ns
        if not self.auto_keepalive or self._paused or self._control is None:
            return 0
        with self._lock:
            leases = [lease for key, lease in self._held.items()
                      if key not in self._no_keepalive]
        for lease in leases:
            self._control.offer_nowait(self._keepalive_bytes(lease, now_ns))
            self.stats.keepalives_sent += 1
        return len(leases)

    def _on_attach_response(self, msg: ShmAttachResponse) -> None:
        """Record a grant in wire order against shutdown notices, then wake our waiter.

        The grant is recorded before the waiter wakes, so a lease is valid from the moment
        ``attach`` returns it; a response to someone else's request is forgotten again.
        """
        lease_id = msg.lease_id
        if msg.code != ResponseCode.OK or lease_id is None:
            self._attaches.resolve(msg.correlation_id, msg)
            return
        added = self.notices.record_grant(lease_id)
        if not self._attaches.resolve(msg.correlation_id, msg) and added:
            self.notices.forget_grant(lease_id)

    def _on_fragment(self, data: bytes) -> None:  # noqa: C901 - one case per message type
        """On the Aeron thread: decode and route one control/announce fragment."""
        try:
            msg = messages.decode(data)
        except UnknownMessage:
            self.stats.unknown += 1
            return
        except DecodeError as exc:
            self.stats.undecodable += 1
            log.debug("undecodable control fragment: %s", exc)
            return
        match msg:
            case ShmAttachResponse():
                self._on_attach_response(msg)
            case ShmDetachResponse():
                self._detaches.resolve(msg.correlation_id, msg)
            case ShmLeaseRevoked():
                self.notices.record_revoke(msg)
                with self._lock:
                    lease = self._held.get(LeaseKey(msg.lease_id, msg.stream_id,
                                                    msg.client_id, int(msg.role)))
                if lease is not None:
                    self._forget(lease)
            case ShmDriverShutdown():
                self.notices.record_shutdown(msg)
                with self._lock:
                    self._held.clear()
            case ShmPoolAnnounce():
                self.notices.record_announce(msg)
            case ConsumerConfig():
                self.notices.record_config(msg)
            case ConsumerHello():
                self.notices.record_hello(msg)
            case _:
                self.stats.ignored += 1  # other clients' requests, descriptors, QoS
