"""Strides the spec allows but the reference clients cannot map: accepted, with a warning.

The C and Julia clients require ``stride_bytes % page size == 0``; the spec only requires a
power of two >= 64, so such a pool loads, and the log names it.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

    from tests.config.helpers import Load

PAGE = os.sysconf("SC_PAGE_SIZE")


def _stride_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "page size" in r.getMessage()
    ]


def test_each_pool_below_or_off_the_page_size_is_warned_about(
    load: Load, caplog: pytest.LogCaptureFixture
) -> None:
    text = f"""
[profiles.cam]
payload_pools = [
  {{ pool_id = 1, stride_bytes = 64 }},
  {{ pool_id = 2, stride_bytes = {PAGE} }},
  {{ pool_id = 7, stride_bytes = {PAGE // 2} }},
]
[profiles.big]
payload_pools = [{{ pool_id = 3, stride_bytes = {PAGE * 4} }}]
[streams.s]
stream_id = 10000
profile = "cam"
"""
    cfg = load(text)
    assert [p.stride_bytes for p in cfg.profiles["cam"].payload_pools] == [64, PAGE, PAGE // 2]
    assert _stride_warnings(caplog) == [
        f"config: profiles.cam.payload_pools[{index}] (pool_id {pool_id}): stride_bytes "
        f"{stride} is not a multiple of the page size {PAGE}; C and Julia clients will "
        "refuse to map this pool"
        for index, pool_id, stride in ((0, 1, 64), (2, 7, PAGE // 2))
    ]


def test_page_multiples_give_no_warning(load: Load, caplog: pytest.LogCaptureFixture) -> None:
    load(
        f"[profiles.p]\npayload_pools = [{{ pool_id = 1, stride_bytes = {PAGE * 16} }}]\n"
        '[streams.s]\nstream_id = 1\nprofile = "p"\n'
    )
    assert _stride_warnings(caplog) == []


def test_the_page_size_comes_from_the_running_system(
    load: Load, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "sysconf", lambda name: 65536 if name == "SC_PAGE_SIZE" else 0)
    load(
        "[profiles.p]\npayload_pools = [{ pool_id = 1, stride_bytes = 4096 }]\n"
        '[streams.s]\nstream_id = 1\nprofile = "p"\n'
    )
    (warning,) = _stride_warnings(caplog)
    assert "stride_bytes 4096 is not a multiple of the page size 65536" in warning
