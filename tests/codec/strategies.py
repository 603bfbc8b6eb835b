"""Hypothesis strategies for every declared message, derived from the engine's own layouts.

Deriving them from the compiled declaration means a message added to a schema module is
covered by the round-trip, truncation and mutation tests without touching this file; the
worked byte examples (test_examples.py) are what pin the declarations to the spec.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st

from messages.sbe import REGISTRY, SbeMessage, codec_of

if TYPE_CHECKING:
    from messages._fields import BlockField, VarField

TEXT_SIZE = 40
BLOB_SIZE = 40
GROUP_SIZE = 3

MESSAGE_CLASSES: tuple[type[SbeMessage], ...] = tuple(
    codec.cls for _, codec in sorted(REGISTRY.items())
)
FRAMED_CLASSES = tuple(cls for cls in MESSAGE_CLASSES if not cls.HEADERLESS)
HEADERLESS_CLASSES = tuple(cls for cls in MESSAGE_CLASSES if cls.HEADERLESS)


def integers(field: BlockField) -> st.SearchStrategy[int]:
    """Every value the field's primitive holds, minus its null values when it is optional."""
    low, high = field.primitive.bounds
    values = st.one_of(st.integers(low, high), st.sampled_from((low, high, 0, 1)))
    if field.optional:
        nulls = field.nulls
        values = values.filter(lambda v: v not in nulls)
    return values


def block_value(field: BlockField) -> st.SearchStrategy[Any]:
    if field.length:
        return st.tuples(*[integers(field) for _ in range(field.length)])
    if field.enum is not None:
        values: st.SearchStrategy[Any] = st.sampled_from(list(field.enum))
        if field.lenient:
            members = field.members
            values = values | integers(field).filter(lambda v: v not in members)
    else:
        values = integers(field)
    return values | st.none() if field.optional else values


def var_value(field: VarField) -> st.SearchStrategy[Any]:
    if field.ascii:
        size = min(TEXT_SIZE, field.max_length)
        return st.text(st.characters(min_codepoint=0, max_codepoint=127), max_size=size)
    return st.binary(max_size=BLOB_SIZE)


def _fields(
    cls: type, block: tuple[BlockField, ...], var_fields: tuple[VarField, ...]
) -> dict[str, st.SearchStrategy[Any]]:
    found = {f.name: block_value(f) for f in block}
    found.update({f.name: var_value(f) for f in var_fields})
    return found


def message_strategy(cls: type[SbeMessage]) -> st.SearchStrategy[SbeMessage]:
    """Any valid instance of ``cls`` (values within range, non-null optionals or None)."""
    codec = codec_of(cls)
    kwargs = _fields(cls, codec.block.fields, codec.vars)
    for group in codec.groups:
        entry = st.builds(
            group.entry_cls, **_fields(group.entry_cls, group.block.fields, group.vars)
        )
        kwargs[group.name] = st.lists(entry, max_size=GROUP_SIZE).map(tuple)
    return st.builds(cls, **kwargs)


def any_framed_message() -> st.SearchStrategy[SbeMessage]:
    return st.one_of([message_strategy(cls) for cls in FRAMED_CLASSES])
