"""An Aeron client that reports its errors instead of ending the process.

The Aeron C client's default error handler prints the error and calls ``exit(1)``. A media
driver that stops cleanly (a tensorpool driver with its embedded media driver, shutting down
or restarting) tells every client "MediaDriver has been shutdown", so with the default
handler every producer and consumer process attached to that driver would die with it. With
this handler the error is logged, the client turns ``is_closed``, and its owner decides what
to do (``AeronThread`` stops; a caller can reconnect once a driver is back).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pyaeron

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

def log_aeron_error(code: int, message: str) -> None:
    """The default handler here: one log line (the client's conductor thread calls it)."""
    log.warning("Aeron error %d: %s", code, message)


def connect(
    aeron_dir: str,
    *,
    client_name: str = "tensorpool-client",
    on_error: Callable[[int, str], None] = log_aeron_error,
    driver_timeout_ms: int | None = None,
) -> pyaeron.Aeron:
    """A connected ``pyaeron.Aeron`` on ``aeron_dir`` whose errors go to ``on_error``."""
    options: dict[str, object] = {}
    if driver_timeout_ms is not None:
        options["driver_timeout_ms"] = driver_timeout_ms
    context = pyaeron.Context(
        dir=aeron_dir, client_name=client_name, error_handler=on_error, **options
    )
    return pyaeron.Aeron(context=context)
