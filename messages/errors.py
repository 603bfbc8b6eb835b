"""Codec errors: one class per way a buffer or a value can be wrong.

Receivers branch on the class (the gateway ignores ``UnknownMessage`` silently, answers an
attach of a newer version from ``UnsupportedVersion``, logs and counts the rest), so every
failure of ``messages.decode`` is one of these and nothing else escapes it.
"""

from __future__ import annotations


class DecodeError(Exception):
    """A buffer that cannot be decoded; ``offset`` is the byte where the problem sits."""

    def __init__(self, reason: str, offset: int | None = None) -> None:
        self.reason = reason
        self.offset = offset
        where = "" if offset is None else f" (at byte {offset})"
        super().__init__(f"{reason}{where}")


class TruncatedMessage(DecodeError):  # noqa: N818 - names fixed by docs/CONTRACTS.md
    """The buffer ends before a header, block, group entry or var-data field it announces."""


class UnknownMessage(DecodeError):  # noqa: N818 - names fixed by docs/CONTRACTS.md
    """A schema or template this codec does not know: receivers ignore it silently."""

    def __init__(self, schema_id: int, template_id: int) -> None:
        self.schema_id = schema_id
        self.template_id = template_id
        super().__init__(f"unknown message schema={schema_id} template={template_id}", 2)


class UnsupportedVersion(DecodeError):  # noqa: N818 - names fixed by docs/CONTRACTS.md
    """A message of a newer schema version than 1.

    ``correlation_id`` is read from an attach request's block when its bytes are there, so
    the driver can answer UNSUPPORTED to the right requester.
    """

    def __init__(
        self,
        schema_id: int,
        template_id: int,
        version: int,
        correlation_id: int | None = None,
    ) -> None:
        self.schema_id = schema_id
        self.template_id = template_id
        self.version = version
        self.correlation_id = correlation_id
        super().__init__(
            f"unsupported version {version} of schema={schema_id} template={template_id}", 6
        )


class InvalidBlockLength(DecodeError):  # noqa: N818 - names fixed by docs/CONTRACTS.md
    """A root or group block length smaller than the fields the schema reads from it."""


class InvalidValue(DecodeError):  # noqa: N818 - names fixed by docs/CONTRACTS.md
    """A structurally complete field with a forbidden value (enum, ASCII, length limit)."""


class EncodeError(ValueError):
    """A message value that cannot be put on the wire (range, type, ASCII, length)."""
