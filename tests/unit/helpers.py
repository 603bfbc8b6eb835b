"""Builders shared by the unit tests of the attach path."""

from __future__ import annotations

from typing import Any

from messages.control import Role, ShmAttachRequest


def attach_request(**fields: Any) -> ShmAttachRequest:
    """Client 7's producer attach to stream 10000 (correlation 1, layout 0); ``fields`` override."""
    base: dict[str, Any] = {
        "correlation_id": 1,
        "stream_id": 10000,
        "client_id": 7,
        "role": Role.PRODUCER,
        "expected_layout_version": 0,
    }
    base.update(fields)
    return ShmAttachRequest(**base)
