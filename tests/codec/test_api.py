"""The public surface promised by docs/CONTRACTS.md, so other packages can rely on it."""

from __future__ import annotations

import dataclasses
from enum import IntEnum

import pytest

import messages
from messages import control, errors, wire
from messages.control import Role, ShutdownReason
from messages.events import ShutdownRequested
from messages.sbe import REGISTRY, SbeMessage

CONTRACT_MESSAGES = {
    (901, 1): "ShmAttachRequest",
    (901, 2): "ShmAttachResponse",
    (901, 3): "ShmDetachRequest",
    (901, 4): "ShmDetachResponse",
    (901, 5): "ShmLeaseKeepalive",
    (901, 6): "ShmDriverShutdown",
    (901, 7): "ShmLeaseRevoked",
    (901, 8): "ShmDriverShutdownRequest",
    (900, 1): "ShmPoolAnnounce",
    (900, 2): "ConsumerHello",
    (900, 3): "ConsumerConfig",
    (900, 4): "FrameDescriptor",
    (900, 5): "QosConsumer",
    (900, 6): "QosProducer",
    (900, 7): "DataSourceAnnounce",
    (900, 8): "DataSourceMeta",
    (900, 9): "ControlResponse",
    (900, 10): "MetaBlobAnnounce",
    (900, 11): "FrameProgress",
    (900, 12): "MetaBlobChunk",
    (900, 13): "MetaBlobComplete",
    (900, 50): "ShmRegionSuperblock",
    (900, 51): "SlotHeader",
    (900, 52): "TensorHeader",
    (902, 1): "BridgeFrameChunk",
}
CONTRACT_ENUMS = [
    "Role",
    "PublishMode",
    "HugepagesPolicy",
    "ResponseCode",
    "LeaseRevokeReason",
    "ShutdownReason",
    "Bool",
    "Mode",
    "FrameProgressState",
    "ProgressUnit",
    "ClockDomain",
    "RegionType",
    "Dtype",
    "MajorOrder",
]
CONTRACT_ERRORS = [
    "DecodeError",
    "TruncatedMessage",
    "UnknownMessage",
    "UnsupportedVersion",
    "InvalidBlockLength",
    "InvalidValue",
    "EncodeError",
]


def test_every_exported_name_exists() -> None:
    for name in messages.__all__:
        assert hasattr(messages, name), name
    expected = set(CONTRACT_MESSAGES.values()) | set(CONTRACT_ENUMS) | set(CONTRACT_ERRORS)
    expected |= {"SbeMessage", "PayloadPool", "Attribute"}
    expected |= {"decode", "encode", "encode_body", "decode_body"}
    assert expected <= set(messages.__all__)


def test_every_contract_message_is_declared_with_its_ids() -> None:
    assert {key: codec.cls.__name__ for key, codec in REGISTRY.items()} == CONTRACT_MESSAGES
    for (schema_id, template_id), name in CONTRACT_MESSAGES.items():
        cls = getattr(messages, name)
        assert (schema_id, template_id) == (cls.SCHEMA_ID, cls.TEMPLATE_ID)
        assert issubclass(cls, messages.SbeMessage)


@pytest.mark.parametrize("name", sorted(set(CONTRACT_MESSAGES.values())))
def test_messages_are_frozen_slotted_keyword_only_dataclasses(name: str) -> None:
    cls = getattr(messages, name)
    params = cls.__dataclass_params__
    assert params.frozen
    assert "__slots__" in cls.__dict__
    assert all(f.kw_only for f in dataclasses.fields(cls))


def test_enums_are_int_enums_and_response_code_is_shared() -> None:
    for name in CONTRACT_ENUMS:
        assert issubclass(getattr(messages, name), IntEnum)
    assert wire.ResponseCode is control.ResponseCode
    assert wire.PayloadPool is control.PayloadPool


def test_errors_form_one_family() -> None:
    for name in CONTRACT_ERRORS[1:-1]:
        assert issubclass(getattr(errors, name), errors.DecodeError)
    assert issubclass(errors.EncodeError, ValueError)
    error = errors.TruncatedMessage("short", 3)
    assert (error.reason, error.offset) == ("short", 3)
    assert "byte 3" in str(error)


def test_group_entries_take_positional_or_keyword_arguments() -> None:
    pool = messages.PayloadPool(1, 8, 1024, "shm:file?path=/a")
    assert pool == messages.PayloadPool(
        pool_id=1, pool_nslots=8, stride_bytes=1024, region_uri="shm:file?path=/a"
    )
    attribute = messages.Attribute("k", "text/plain", b"v")
    assert (attribute.key, attribute.format, attribute.value) == ("k", "text/plain", b"v")


def test_names_used_by_the_actor_messages_resolve() -> None:
    assert ShutdownRequested(ShutdownReason.ADMIN).reason is ShutdownReason.ADMIN
    # Compared as an int: mypy takes the IntEnum literal and the int literal for disjoint types.
    consumer: int = Role.CONSUMER
    assert consumer == 2
    assert SbeMessage is messages.SbeMessage


def test_messages_are_immutable() -> None:
    frame = messages.FrameDescriptor(stream_id=1, epoch=2, seq=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        frame.seq = 4  # type: ignore[misc]
