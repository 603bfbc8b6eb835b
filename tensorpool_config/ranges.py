"""Stream-id range syntax: every form either reference driver accepts (spec A-17).

``"a-b"``, ``"a"``, ``"a,b"``, ``[a, b]`` (two integers) and ``["a-b", "c-d"]`` (several
ranges, tried in order). ``""`` and ``[]`` mean "no range", which lets an environment
variable switch off a range the file configured.
"""

from __future__ import annotations

import re

from tensorpool_config.errors import ConfigError
from tensorpool_config.model import IdRange

ID_MIN = 1
ID_MAX = 2**32 - 1

_NUMBER = re.compile(r"\s*([0-9]+)\s*")


def parse_ranges(value: object, key: str) -> tuple[IdRange, ...]:
    """Parse a TOML (or environment) range value into inclusive ranges."""
    if isinstance(value, str):
        return () if value.strip() == "" else (parse_range_string(value, key),)
    if isinstance(value, list):
        if not value:
            return ()
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            if len(value) != 2:
                raise ConfigError(
                    key, f"an array of integers must be [first, last], got {len(value)} values"
                )
            return (_checked(value[0], value[1], key),)
        if all(isinstance(v, str) for v in value):
            return tuple(parse_range_string(v, f"{key}[{i}]") for i, v in enumerate(value))
        raise ConfigError(
            key, 'an array must hold two integers or only range strings like "20000-29999"'
        )
    raise ConfigError(
        key,
        f'must be a range string like "20000-29999" or an array, got {_type_name(value)}',
    )


def parse_range_string(text: str, key: str) -> IdRange:
    """``"a-b"``, ``"a,b"`` or ``"a"`` (surrounding spaces allowed)."""
    for separator in ("-", ","):
        if separator in text:
            first, _, last = text.partition(separator)
            return _checked(_number(first, text, key), _number(last, text, key), key)
    return _checked(_number(text, text, key), _number(text, text, key), key)


def format_ranges(ranges: tuple[IdRange, ...]) -> str:
    """Human-readable form for logs and status output (``""`` when there is no range)."""
    return ", ".join(str(r) for r in ranges)


def _number(part: str, whole: str, key: str) -> int:
    match = _NUMBER.fullmatch(part)
    if match is None:
        raise ConfigError(
            key, f'invalid range {whole!r}: expected "first-last", "first,last" or "id"'
        )
    return int(match.group(1))


def _checked(first: int, last: int, key: str) -> IdRange:
    if not ID_MIN <= first <= last <= ID_MAX:
        raise ConfigError(
            key, f"range bounds must satisfy 1 <= first <= last <= {ID_MAX}, got {first}-{last}"
        )
    return IdRange(first, last)


def _type_name(value: object) -> str:
    return {bool: "a boolean", int: "an integer", float: "a float", dict: "a table"}.get(
        type(value), type(value).__name__
    )
