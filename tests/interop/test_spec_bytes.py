"""The spec's own bytes against a running driver process.

sbe.md §11.1 is a complete attach request; sent twice, the second must be answered with
exactly the 100 bytes of sbe.md §11.3 (the reference clients match on that text to pick a new
client id). ConsumerHello -> ConsumerConfig (driver-behaviour.md §12) is exercised over real
Aeron with per-consumer ranges configured.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

import pytest

from messages import (
    Bool,
    ConsumerConfig,
    ConsumerHello,
    Mode,
    ResponseCode,
    Role,
    ShmAttachResponse,
    decode,
)

from .conftest import CHANNEL, CONTROL_STREAM, DriverProc, write_config
from .rawclient import RawClient

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow

# sbe.md §11.1: correlationId 1001, stream 10000, client 7, PRODUCER, layout 1,
# EXISTING_OR_CREATE, hugepages UNSPECIFIED, desiredNodeId null.
ATTACH_11_1 = bytes.fromhex(
    "1b000100850301 00e903000000000000 10270000 07000000 01 01000000 02 00 ffffffff".replace(
        " ", ""
    )
)
# sbe.md §11.3: the REJECTED response to it, every optional field null, empty group and URI.
REJECT_11_3 = (
    bytes.fromhex(
        "36000200850301 00e903000000000000 03000000".replace(" ", "")
        + "ff" * 42
        + "0a000000 00000000 1a000000".replace(" ", "")
    )
    + b"client_id already attached"
)


class ByteClient(RawClient):
    """A raw client that also keeps every fragment's bytes, for byte-exact comparisons."""

    def __init__(self, aeron_dir: str, channel: str, control: int, announce: int) -> None:
        super().__init__(aeron_dir, channel, control, announce)
        self.raw: list[bytes] = []

    def _on_fragment(self, buf: Any, header: Any) -> None:
        if header.session_id != self.pub.session_id:
            self.raw.append(bytes(buf))
        super()._on_fragment(buf, header)


@pytest.fixture
def byte_client(driver: DriverProc) -> Iterator[ByteClient]:
    client = ByteClient(driver.aeron_dir, CHANNEL, CONTROL_STREAM, driver.announce_stream)
    try:
        yield client
    finally:
        client.close()


def response_bytes(client: ByteClient, correlation_id: int) -> list[bytes]:
    """Every ShmAttachResponse frame seen for ``correlation_id`` (schema 901, template 2)."""
    return [
        b
        for b in client.raw
        if b[2:6] == struct.pack("<HH", 2, 901)
        and struct.unpack_from("<q", b, 8)[0] == correlation_id
    ]


def test_the_spec_attach_bytes_are_granted_then_rejected_with_the_spec_bytes(
    byte_client: ByteClient,
) -> None:
    assert len(ATTACH_11_1) == 35
    assert len(REJECT_11_3) == 100

    byte_client.send_raw(ATTACH_11_1)
    _, ok = byte_client.wait_for(
        lambda m: isinstance(m, ShmAttachResponse) and m.correlation_id == 1001
    )
    assert ok.code == ResponseCode.OK, ok
    granted = response_bytes(byte_client, 1001)[0]
    assert granted[:8] == bytes.fromhex("3600020085030100")  # block 54, template 2, 901, v1
    granted_message = decode(granted)
    assert isinstance(granted_message, ShmAttachResponse)
    pools = granted_message.payload_pools
    uris = sum(4 + len(p.region_uri) for p in pools)
    header_uri = len(ok.header_region_uri)
    # sbe.md §11.4: header | block 54 | group header | pools | header URI | empty error text.
    assert len(granted) == 8 + 54 + 4 + 10 * len(pools) + uris + 4 + header_uri + 4

    byte_client.send_raw(ATTACH_11_1)  # the same client id again
    byte_client.wait_for(
        lambda m: (
            isinstance(m, ShmAttachResponse)
            and m.correlation_id == 1001
            and m.code == ResponseCode.REJECTED
        )
    )
    rejected = [b for b in response_bytes(byte_client, 1001) if b != granted]
    assert rejected == [REJECT_11_3]


@pytest.fixture
def ranged_driver(tmp_path: Path) -> Iterator[DriverProc]:
    """The interop driver with per-consumer descriptor and control ranges."""
    config = write_config(tmp_path)
    text = config.read_text().replace(
        'stream_id_range = "20000-20099"',
        'stream_id_range = "20000-20099"\n'
        'descriptor_stream_id_range = "31000-31001"\n'
        'control_stream_id_range = "32000-32001"',
    )
    config.write_text(text)
    drv = DriverProc(tmp_path, config, CONTROL_STREAM)
    try:
        yield drv.start()
    finally:
        drv.kill()


def hello(consumer_id: int, *, descriptor: str, descriptor_id: int) -> ConsumerHello:
    return ConsumerHello(
        stream_id=10000,
        consumer_id=consumer_id,
        supports_shm=Bool.TRUE,
        supports_progress=Bool.FALSE,
        mode=Mode.STREAM,
        max_rate_hz=0,
        expected_layout_version=1,
        descriptor_stream_id=descriptor_id,
        control_stream_id=0,
        descriptor_channel=descriptor,
        control_channel="",
    )


def test_consumer_hello_is_answered_with_a_per_consumer_stream_from_the_range(
    ranged_driver: DriverProc,
) -> None:
    client = ranged_driver.client()
    try:
        _, lease = client.attach(client_id=202, role=Role.CONSUMER)
        assert lease.code == ResponseCode.OK

        client.send(hello(202, descriptor=CHANNEL, descriptor_id=1))
        _, config = client.wait_for(
            lambda m: isinstance(m, ConsumerConfig) and m.consumer_id == 202
        )
        assert (config.stream_id, config.use_shm, config.mode) == (10000, Bool.TRUE, Mode.STREAM)
        assert config.descriptor_stream_id in (31000, 31001)
        assert config.descriptor_channel == CHANNEL
        assert (config.control_stream_id, config.control_channel) == (0, "")
        assert config.payload_fallback_uri == ""

        # Hellos are periodic: the same consumer keeps the same assignment.
        mark = len(client.seen)
        client.send(hello(202, descriptor=CHANNEL, descriptor_id=1))
        _, again = client.wait_for(
            lambda m: isinstance(m, ConsumerConfig) and m.consumer_id == 202, start=mark
        )
        assert again.descriptor_stream_id == config.descriptor_stream_id

        # A channel without a stream id is invalid: declined with both channels empty.
        mark = len(client.seen)
        client.send(hello(202, descriptor=CHANNEL, descriptor_id=0))
        _, declined = client.wait_for(
            lambda m: isinstance(m, ConsumerConfig) and m.consumer_id == 202, start=mark
        )
        assert (declined.descriptor_stream_id, declined.descriptor_channel) == (0, "")
        assert (declined.control_stream_id, declined.control_channel) == (0, "")

        # A hello from a consumer without a lease is ignored: nothing comes back for it.
        mark = len(client.seen)
        client.send(hello(999, descriptor=CHANNEL, descriptor_id=1))
        client.send(hello(202, descriptor=CHANNEL, descriptor_id=1))  # a marker that is answered
        client.wait_for(
            lambda m: isinstance(m, ConsumerConfig) and m.consumer_id == 202, start=mark
        )
        assert not [
            m for m in client.seen[mark:] if isinstance(m, ConsumerConfig) and m.consumer_id == 999
        ]
    finally:
        client.close()
