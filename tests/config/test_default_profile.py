"""A ``default_profile`` naming no profile: a warning at load, a reject at attach (§3.1 step 3).

The driver must start with such a file, because driver-behaviour.md §3.1 step 3 gives the
answer for the attach that needs the missing profile: INVALID_PARAMS ``profile not found``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest

from actors.driver.attach_policy import AttachContext, Reject, decide_attach
from actors.driver.ids import NodeIdAllocator
from actors.driver.stream_ids import RangeAllocator
from messages.control import PublishMode, ResponseCode, Role, ShmAttachRequest
from tensorpool_config import ConfigError

if TYPE_CHECKING:
    from tests.config.helpers import Load

PROFILE = "[profiles.p]\npayload_pools = [{ pool_id = 1, stride_bytes = 65536 }]\n"
DYNAMIC = (
    '[driver]\nstream_id_range = "20000-20099"\n'
    '[policies]\nallow_dynamic_streams = true\ndefault_profile = "nope"\n' + PROFILE
)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    return [m for m in messages if "default_profile" in m]


def test_a_missing_default_profile_loads_with_a_warning_naming_the_key(
    load: Load, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = load(DYNAMIC)
    assert cfg.policies.default_profile == "nope"
    assert list(cfg.profiles) == ["p"]
    (warning,) = _warnings(caplog)
    assert "policies.default_profile" in warning
    assert "'nope'" in warning
    assert "known: p" in warning


def test_the_warning_names_the_variable_when_the_environment_set_it(
    load: Load, caplog: pytest.LogCaptureFixture
) -> None:
    load(
        PROFILE + '[streams.s]\nstream_id = 1\nprofile = "p"\n',
        {"POLICIES_DEFAULT_PROFILE": "gone"},
    )
    (warning,) = _warnings(caplog)
    assert "POLICIES_DEFAULT_PROFILE (overrides policies.default_profile)" in warning


def test_an_existing_default_profile_gives_no_warning(
    load: Load, caplog: pytest.LogCaptureFixture
) -> None:
    load(DYNAMIC.replace('"nope"', '"p"'))
    assert _warnings(caplog) == []


def test_a_static_stream_left_on_the_missing_default_profile_is_still_an_error(
    load: Load,
) -> None:
    with pytest.raises(ConfigError) as info:
        load(DYNAMIC + "[streams.s]\nstream_id = 10000\n")
    assert info.value.key == "streams.s.profile"
    assert "no profile named 'nope' (known: p)" in info.value.problem


def test_a_dynamic_attach_is_then_answered_profile_not_found(load: Load) -> None:
    cfg = load(DYNAMIC)
    ctx = AttachContext(
        config=cfg,
        clients_in_use=frozenset(),
        streams={},
        dynamic_ids=RangeAllocator(cfg.driver.stream_id_range, lambda _: False),
        node_ids=NodeIdAllocator(0),
        hugepages_capable=False,
    )
    request = ShmAttachRequest(
        correlation_id=1,
        stream_id=0,
        client_id=7,
        role=Role.PRODUCER,
        expected_layout_version=0,
        publish_mode=PublishMode.EXISTING_OR_CREATE,
    )
    assert decide_attach(request, ctx, 0) == Reject(
        ResponseCode.INVALID_PARAMS, "profile not found"
    )
