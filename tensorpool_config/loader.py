"""TOML text + environment -> validated DriverConfig."""

from __future__ import annotations

import logging
import os
import tomllib
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from tensorpool_config.checks import check_ranges, check_streams_exist
from tensorpool_config.defaults import DEFAULT_CONFIG_TOML
from tensorpool_config.errors import ConfigError
from tensorpool_config.model import DriverConfig
from tensorpool_config.profiles import read_profiles, read_streams
from tensorpool_config.sections import read_admin, read_driver, read_policies, read_shm
from tensorpool_config.table import Table

if TYPE_CHECKING:
    from collections.abc import Mapping

log = logging.getLogger("config")

# [supervisor] belongs to the C driver's embedded supervisor: accepted and ignored.
KNOWN_TABLES = frozenset(
    {"driver", "shm", "policies", "profiles", "streams", "supervisor", "admin"}
)


def load_config(path: Path | str | None, env: Mapping[str, str] = os.environ) -> DriverConfig:
    """Load ``path`` (or the built-in configuration when None), then apply ``env``."""
    if path is None:
        return default_config(env)
    path = Path(path)
    return parse_config(read_text(path), source=str(path), env=env)


def read_text(path: Path) -> str:
    """A configuration file's text; unreadable or non-UTF-8 files are one-line errors."""
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), f"not UTF-8 text: {exc.reason}") from exc


def default_config(env: Mapping[str, str] = os.environ) -> DriverConfig:
    """The built-in configuration (examples/driver.toml), with environment overrides."""
    return parse_config(DEFAULT_CONFIG_TOML, source="<built-in configuration>", env=env)


def parse_config(
    text: str, *, source: str = "<string>", env: Mapping[str, str] = os.environ
) -> DriverConfig:
    """Parse and validate ``text``; any failure is a one-line ``ConfigError`` naming ``source``."""
    return build_config(parse_toml(text, source), env)


def parse_toml(text: str, source: str) -> dict[str, object]:
    """TOML text -> tables; bad TOML is a one-line ``ConfigError`` naming ``source``."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, f"invalid TOML: {exc}") from exc
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively: a few hundred levels
        # exhaust the stack. Dropping the cause keeps a thousand-frame traceback out of logs.
        raise ConfigError(
            source, "invalid TOML: arrays or inline tables nested too deeply to parse"
        ) from None
    except ValueError as exc:  # an integer beyond Python's digit limit for int()
        reason = str(exc).split(";", 1)[0]  # drop the hint about sys.set_int_max_str_digits
        raise ConfigError(source, f"invalid TOML: unreadable value: {reason}") from exc
    return raw


def build_config(raw: Mapping[str, object], env: Mapping[str, str]) -> DriverConfig:
    for name in raw:
        if name not in KNOWN_TABLES:
            log.warning("config: unknown table [%s] ignored", name)
    driver = read_driver(Table(raw.get("driver", {}), "driver", env))
    shm = read_shm(Table(raw.get("shm", {}), "shm", env))
    profiles = read_profiles(raw.get("profiles", {}))
    policies = read_policies(Table(raw.get("policies", {}), "policies", env), list(profiles))
    streams = read_streams(raw.get("streams", {}), profiles, policies.default_profile)
    check_streams_exist(policies, streams)
    check_ranges(driver, streams)
    admin = read_admin(Table(raw.get("admin", {}), "admin", env), driver.instance_id, env)
    return DriverConfig(
        driver=driver,
        shm=shm,
        policies=policies,
        profiles=MappingProxyType(profiles),
        streams=MappingProxyType(streams),
        admin=admin,
    )
