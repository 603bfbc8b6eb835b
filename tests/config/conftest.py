"""Fixtures for the configuration tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tensorpool_config import DriverConfig, parse_config

if TYPE_CHECKING:
    from collections.abc import Mapping

    from tests.config.helpers import Load


@pytest.fixture
def load() -> Load:
    """Parse TOML text with an explicit environment (never the process's own)."""

    def _load(text: str, env: Mapping[str, str] | None = None) -> DriverConfig:
        return parse_config(text, source="test.toml", env={} if env is None else env)

    return _load
