"""bridge.md §13.2 item 5: DataSource* of the source stream appear on B's stream 1300 with
``streamId`` 20000 and unchanged ``metaVersion``; another stream's metadata is not forwarded."""

from __future__ import annotations

import time

import pytest

import messages
from messages import Attribute, DataSourceAnnounce, DataSourceMeta
from tensorpool_client.aeron_connect import connect
from tests.bridge.conftest import CHANNEL, POOLS_A, POOLS_B, World

pytestmark = pytest.mark.slow


def test_metadata_of_the_source_stream_is_forwarded(world: World) -> None:
    a = world.host("ma", stream=10000, pools=POOLS_A, nslots=64)
    b = world.host("mb", stream=20000, pools=POOLS_B, nslots=32)
    sender = world.bridge(a, "sender", metadata=True)
    receiver = world.bridge(b, "receiver", metadata=True)
    receiver.wait_state("receiver", "waiting_announce", "streaming")
    source = connect(a.aeron_dir)
    far = connect(b.aeron_dir)
    try:
        pub = source.add_exclusive_publication(CHANNEL, 1300)
        sub = far.add_subscription(CHANNEL, 1300)
        ours = DataSourceAnnounce(stream_id=10000, producer_id=3, epoch=9, meta_version=4,
                                  name="cam", summary="front")
        meta = DataSourceMeta(stream_id=10000, meta_version=4, timestamp_ns=77, attributes=(
            Attribute(key="fps", format="u32", value=b"\x1e\x00\x00\x00"),))
        other = DataSourceAnnounce(stream_id=10001, producer_id=3, epoch=9, meta_version=4,
                                   name="other", summary="")
        got: list[messages.SbeMessage] = []
        deadline = time.monotonic() + 15
        while len({type(m) for m in got}) < 2:
            assert time.monotonic() < deadline, f"nothing forwarded: {sender.status()}"
            for msg in (other, ours, meta):
                pub.offer(messages.encode(msg))
            end = time.monotonic() + 0.2
            while time.monotonic() < end:
                sub.poll(lambda buf, _h: got.append(messages.decode(bytes(buf))), 10)
                time.sleep(0.005)
        assert {m.stream_id for m in got} == {20000}  # type: ignore[attr-defined]
        announces = [m for m in got if isinstance(m, DataSourceAnnounce)]
        metas = [m for m in got if isinstance(m, DataSourceMeta)]
        assert announces[0].name == "cam"
        assert announces[0].meta_version == 4
        assert metas[0].attributes == meta.attributes
        counters = receiver.mapping("receiver")["counters"]
        assert counters["metadata_forwarded"] >= 2
    finally:
        far.close()
        source.close()
