"""One exception class per way a client call can fail, so callers branch on the class."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from messages import ShmAttachResponse, ShmDetachResponse


class ClientError(Exception):
    """Base class of every error raised by the client package."""


class ClientClosed(ClientError):  # noqa: N818 - names fixed by the client API
    """The DriverClient is not running (never started, closed, or its poll thread died)."""


class RequestTimeout(ClientError):  # noqa: N818 - names fixed by the client API
    """No matching response arrived in time (no driver, or the response was lost)."""


class AttachRejected(ClientError):  # noqa: N818 - names fixed by the client API
    """The driver answered an attach with a non-OK code; ``response`` is the raw message."""

    def __init__(self, code: int, error_message: str, response: ShmAttachResponse) -> None:
        super().__init__(f"attach rejected ({code!r}): {error_message}")
        self.code = code
        self.error_message = error_message
        self.response = response


class DetachRejected(ClientError):  # noqa: N818 - names fixed by the client API
    """The driver answered a detach with a non-OK code; ``response`` is the raw message."""

    def __init__(self, code: int, error_message: str, response: ShmDetachResponse) -> None:
        super().__init__(f"detach rejected ({code!r}): {error_message}")
        self.code = code
        self.error_message = error_message
        self.response = response


class InvalidResponse(ClientError):  # noqa: N818 - names fixed by the client API
    """An OK attach response that breaks the acceptance rules of driver-protocol.md §3.2."""


class LeaseLost(ClientError):  # noqa: N818 - names fixed by the client API
    """The lease a producer or consumer relies on was revoked or the driver shut down."""


class FrameOverwritten(ClientError):  # noqa: N818 - names fixed by the client API
    """A zero-copy frame's slot was rewritten by the producer before the copy finished."""


class BackPressured(ClientError):  # noqa: N818 - names fixed by the client API
    """A producer that does not overwrite unread frames waited too long for its slowest
    consumer; ``slowest`` is that consumer's id and ``last_seq_seen`` what it reported."""

    def __init__(self, message: str, slowest: int | None, last_seq_seen: int | None) -> None:
        super().__init__(message)
        self.slowest = slowest
        self.last_seq_seen = last_seq_seen
