"""The one place the bridge touches the client library (``tensorpool_client``).

The sender is a CONSUMER of its source stream and the receiver the PRODUCER of its
destination stream (B-2); leases, keepalives, region mapping and validation, remapping on a
new epoch and the producer's activity refresh all come from ``DriverClient``, ``Consumer``
and ``Producer``. The frame path uses the client's caller-thread data plane through its
public relay API, on the bridge's network thread: the sender polls the consumer's
descriptor subscription (``Consumer.poll_descriptors``) and copies the raw slot and payload
(``Consumer.read_slot_into``, §5.2 steps 2-6); the receiver writes through
``Producer.relay``, which keeps the source's seq, tensor header, timestamp and metaVersion
(§6.5) and publishes the local descriptor on the producer's own publication (§6.6).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from messages import PublishMode
from tensorpool_client import Consumer, DriverClient, Producer

if TYPE_CHECKING:
    from tensorpool_bridge.config import BridgeConfig
    from tensorpool_client import Lease


def driver_client(cfg: BridgeConfig) -> DriverClient:
    """A started client of the local driver (one per lease: every lease gets its own id)."""
    d = cfg.driver
    return DriverClient(
        cfg.aeron_dir, control_channel=d.control_channel, control_stream_id=d.control_stream_id,
        announce_channel=d.announce_channel, announce_stream_id=d.announce_stream_id,
        keepalive_interval_ms=d.keepalive_interval_ms,
    ).start()


class SourceStream:
    """The sender's CONSUMER lease of ``source_stream_id``: descriptors and raw frame copies."""

    def __init__(self, client: DriverClient, cfg: BridgeConfig, stream_id: int) -> None:
        self._client = client
        self._consumer = Consumer(
            client, stream_id, descriptor_channel=cfg.local_channel,
            descriptor_stream_id=cfg.local_descriptor_stream_id,
            allowed_base_dirs=cfg.driver.allowed_base_dirs,
            attach_timeout=cfg.attach_timeout_ms / 1000,
        )
        self.stream_id = stream_id
        self.poll = self._consumer.poll_descriptors
        """``poll(handler, limit)``: ``handler(epoch, seq, trace_id)`` per descriptor."""
        self.read_into = self._consumer.read_slot_into
        """``read_into(epoch, seq, slot_out, payload_out)``: the length or a skip reason."""

    @property
    def lease(self) -> Lease:
        return self._consumer.lease

    @property
    def epoch(self) -> int | None:
        """The epoch mapped now (None while nothing could be mapped)."""
        return self._consumer.epoch

    @property
    def max_payload_bytes(self) -> int:
        """The largest source stride mapped now: no frame read can be longer."""
        return self._consumer.max_payload_bytes

    def lease_valid(self) -> bool:
        return self._client.lease_valid(self._consumer.lease)

    def close(self) -> None:
        self._consumer.close()


class DestStream:
    """The receiver's PRODUCER lease of ``dest_stream_id``: writes frames as the source had them."""

    def __init__(self, client: DriverClient, cfg: BridgeConfig, stream_id: int) -> None:
        self._client = client
        self._producer = Producer(
            client, stream_id, publish_mode=PublishMode.EXISTING_OR_CREATE,
            descriptor_channel=cfg.local_channel,
            descriptor_stream_id=cfg.local_descriptor_stream_id,
            allowed_base_dirs=cfg.driver.allowed_base_dirs,
            attach_timeout=cfg.attach_timeout_ms / 1000,
        )
        if self._producer.stream_id != stream_id:
            self._producer.close()
            raise ValueError(f"driver granted stream {self._producer.stream_id}, "
                             f"not {stream_id}: the wire id is fixed")
        self.stream_id = stream_id
        self.max_payload_bytes = self._producer.max_payload_bytes
        self.layout = self._producer.relay_layout
        """``layout(tensor, length)``: §6.5 step 7's pool for such frames, or None."""
        self.relay = self._producer.relay
        """``relay(layout, seq, payload, ...)``: §6.5 steps 8-11 and the §6.6 descriptor."""

    @property
    def lease(self) -> Lease:
        return self._producer.lease

    @property
    def epoch(self) -> int:
        return self._producer.epoch

    def lease_valid(self) -> bool:
        return self._client.lease_valid(self._producer.lease)

    def close(self) -> None:
        self._producer.close()


__all__ = ["DestStream", "SourceStream", "driver_client"]
