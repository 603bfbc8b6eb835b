"""CRC32C (Castagnoli) of bridge.md §4.4, through the hardware-accelerated ``crc32c`` package.

A pure-Python CRC runs at a few MB/s, far below what a 640 KiB frame stream needs; the
package uses SSE4.2/ARMv8 instructions where present and a table otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import crc32c as _crc32c

if TYPE_CHECKING:
    from collections.abc import Buffer


def crc32c(data: Buffer, crc: int = 0) -> int:
    """CRC32C of ``data``, continuing from ``crc`` (chained form equals the concatenation)."""
    value: int = _crc32c.crc32c(data, crc)
    return value
