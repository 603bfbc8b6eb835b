"""ConsumerHello -> ConsumerConfig assignments (§12)."""

from actors.driver.consumer_streams import (
    DECLINED,
    ConsumerStreams,
    HelloRequest,
    HelloVerdict,
    classify,
)
from tensorpool_config.model import IdRange


def hello(dch: str = "", did: int | None = 0, cch: str = "", cid: int | None = 0) -> HelloRequest:
    return HelloRequest(dch, did, cch, cid)


def test_classify() -> None:
    assert classify(hello()) == HelloVerdict.NOTHING
    assert classify(hello(did=5)) == HelloVerdict.NOTHING  # id without channel: nothing asked
    assert classify(hello("aeron:ipc", 0)) == HelloVerdict.INVALID
    assert classify(hello("aeron:ipc", None)) == HelloVerdict.INVALID
    assert classify(hello("aeron:ipc", 7, "aeron:ipc", 0)) == HelloVerdict.INVALID
    assert classify(hello("aeron:ipc", 7)) == HelloVerdict.REQUEST
    assert classify(hello(cch="aeron:ipc", cid=9)) == HelloVerdict.REQUEST


def test_assigns_round_robin_and_reuses_per_consumer() -> None:
    streams = ConsumerStreams((IdRange(31000, 31001),), (IdRange(32000, 32001),))
    both = hello("d", 1, "c", 1)
    a = streams.answer(7, both)
    assert (a.descriptor_stream_id, a.descriptor_channel) == (31000, "d")
    assert (a.control_stream_id, a.control_channel) == (32000, "c")
    assert streams.answer(7, both) == a  # periodic hellos: same answer
    b = streams.answer(8, both)
    assert (b.descriptor_stream_id, b.control_stream_id) == (31001, 32001)


def test_exhausted_range_declines_that_kind_only() -> None:
    streams = ConsumerStreams((IdRange(31000, 31000),), (IdRange(32000, 32001),))
    streams.answer(1, hello("d", 1))
    answer = streams.answer(2, hello("d", 1, "c", 1))
    assert (answer.descriptor_stream_id, answer.descriptor_channel) == (0, "")
    assert (answer.control_stream_id, answer.control_channel) == (32000, "c")


def test_no_range_declines() -> None:
    streams = ConsumerStreams((), ())
    assert streams.answer(1, hello("d", 1, "c", 1)) == DECLINED


def test_release_frees_the_ids_for_others() -> None:
    streams = ConsumerStreams((IdRange(31000, 31000),), ())
    streams.answer(1, hello("d", 1))
    streams.release(1)
    assert streams.assigned(1) == (None, None)
    assert streams.answer(2, hello("d", 1)).descriptor_stream_id == 31000
