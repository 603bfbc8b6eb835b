"""Typed reads of one TOML table, with environment overrides applied at the point of reading.

Reading every scalar key through one place is what makes "every scalar key of [driver], [shm],
[policies] and [admin] can be overridden by ``<TABLE>_<KEY>``" true by construction, and lets
errors name where a bad value came from: the dotted key for the file, the variable for the
environment.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from tensorpool_config.errors import ConfigError
from tensorpool_config.ranges import parse_ranges

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from tensorpool_config.model import IdRange

    _Convert = Callable[[str], object]

log = logging.getLogger("config")

# Used only when the canonical variable is unset (driver-behaviour.md §13).
ENV_ALIASES = {
    "DRIVER_AERON_DIR": "AERON_DIR",
    "DRIVER_CONTROL_CHANNEL": "TP_CONTROL_CHANNEL",
    "DRIVER_CONTROL_STREAM_ID": "TP_CONTROL_STREAM_ID",
}

_ENV_INT = re.compile(r"-?[0-9]+")
_OCTAL = re.compile(r"(?:0o)?([0-7]+)")


def type_name(value: object) -> str:
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        str: "a string",
        dict: "a table",
        list: "an array",
    }
    return names.get(type(value), type(value).__name__)


class Table:
    """One TOML table (possibly absent) plus, for fixed tables, its environment overrides."""

    def __init__(self, raw: object, path: str, env: Mapping[str, str] | None) -> None:
        if not isinstance(raw, dict):
            raise ConfigError(path, f"must be a table, got {type_name(raw)}")
        self._raw: dict[str, object] = raw
        self.path = path
        self._env = env
        self._labels: dict[str, str] = {}

    def key(self, name: str) -> str:
        return f"{self.path}.{name}"

    def env_var(self, name: str) -> str:
        return f"{self.path}_{name}".upper()

    def has(self, name: str) -> bool:
        """True when the file or the environment gives the key a value."""
        return name in self._raw or self._from_env(name) is not None

    def label(self, name: str) -> str:
        """Where the value of a key already read came from: the dotted key or the variable."""
        return self._labels.get(name, self.key(name))

    def fail(self, name: str, problem: str) -> ConfigError:
        """An error about a key already read, labelled with where its value came from."""
        return ConfigError(self.label(name), problem)

    # -- scalar readers (overridable from the environment) ------------------------------

    def string(self, name: str, default: str) -> str:
        value = self._value(name, default, lambda text: text)
        if not isinstance(value, str):
            raise self.fail(name, f"must be a string, got {type_name(value)}")
        return value

    def integer(self, name: str, default: int, *, lo: int, hi: int) -> int:
        value = self._value(name, default, lambda text: self._env_int(name, text))
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(name, f"must be an integer, got {type_name(value)}")
        if not lo <= value <= hi:
            raise self.fail(name, f"must be between {lo} and {hi}, got {value}")
        return value

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self._value(name, default, lambda text: self._env_bool(name, text))
        if not isinstance(value, bool):  # only a file value can be anything but a bool
            raise self.fail(name, f"must be true or false, got {type_name(value)}")
        return value

    def octal(self, name: str, default: str, *, hi: int) -> int:
        """An octal mode given as a string (``"660"``), the way both reference drivers take it."""
        value = self._value(name, default, lambda text: text)
        if not isinstance(value, str):
            raise self.fail(name, f'must be an octal string like "660", got {type_name(value)}')
        match = _OCTAL.fullmatch(value)
        if match is None:
            raise self.fail(name, f'must be an octal string like "660", got {value!r}')
        mode = int(match.group(1), 8)
        if mode > hi:
            raise self.fail(name, f"must be at most {hi:o} (octal), got {value!r}")
        return mode

    def ranges(self, name: str) -> tuple[IdRange, ...]:
        value = self._value(name, "", lambda text: text)
        return parse_ranges(value, self._labels[name])

    # -- non-scalar readers (file only) -------------------------------------------------

    def raw(self, name: str, default: object) -> object:
        self._labels[name] = self.key(name)
        return self._raw.get(name, default)

    def strings(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.raw(name, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(name, f"must be an array of strings, got {type_name(value)}")
        return tuple(value)

    def warn_unknown(self) -> None:
        """Newer reference drivers may add keys: say we ignore them, do not fail."""
        for name in self._raw:
            if name not in self._labels:
                log.warning("config: unknown key %s ignored", self.key(name))

    # -- internals ----------------------------------------------------------------------

    def _value(self, name: str, default: object, convert: _Convert) -> object:
        override = self._from_env(name)
        if override is not None:
            var, text = override
            self._labels[name] = f"{var} (overrides {self.key(name)})"
            return convert(text)
        self._labels[name] = self.key(name)
        return self._raw.get(name, default)

    def _from_env(self, name: str) -> tuple[str, str] | None:
        if self._env is None:
            return None
        var = self.env_var(name)
        for candidate in (var, ENV_ALIASES.get(var)):
            if candidate is not None and candidate in self._env:
                return candidate, self._env[candidate]
        return None

    def _env_int(self, name: str, text: str) -> int:
        if _ENV_INT.fullmatch(text) is None:
            raise self.fail(name, f"must be a decimal integer, got {text!r}")
        return int(text)

    def _env_bool(self, name: str, text: str) -> bool:
        """Julia's rule (driver-behaviour.md §13): ``true`` in any case is true, all else false.

        A value that is neither spelling is still accepted as false, but said out loud, so
        ``=yes`` or ``=1`` does not silently switch a feature off.
        """
        word = text.strip().lower()
        if word not in {"true", "false"}:
            log.warning(
                "config: %s: %r is neither true nor false; taken as false",
                self.label(name),
                text,
            )
        return word == "true"
