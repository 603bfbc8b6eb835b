"""The ``shm:file?path=<abs>[|require_hugepages=true|false]`` region URI (shm-layout.md §6).

Parsing is strict because URIs arrive from other processes: anything outside the grammar is
refused with a ``UriError`` saying what was wrong, never guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from shm.errors import UriError

PREFIX: Final = "shm:file?"
MAX_URI_BYTES: Final = 4096
_BOOLEANS: Final = {"true": True, "false": False}
_FORBIDDEN_IN_PATH: Final = ("|", "?", " ")


@dataclass(frozen=True, slots=True)
class RegionUri:
    """A parsed region URI: an absolute path with no ``.``/``..`` components."""

    path: str
    require_hugepages: bool = False


def format_region_uri(path: str, require_hugepages: bool = False) -> str:
    """Canonical minimal form: the hugepages parameter only when true (A-24)."""
    _check_path(path)
    uri = f"{PREFIX}path={path}"
    if require_hugepages:
        uri += "|require_hugepages=true"
    if len(uri.encode()) > MAX_URI_BYTES:
        raise UriError(f"uri longer than {MAX_URI_BYTES} bytes")
    return uri


def parse_region_uri(uri: str) -> RegionUri:
    """Parse ``uri``; both ``require_hugepages`` spellings of the reference drivers are accepted."""
    if len(uri.encode("utf-8", "surrogateescape")) > MAX_URI_BYTES:
        raise UriError(f"uri longer than {MAX_URI_BYTES} bytes")
    if not uri.startswith(PREFIX):
        raise UriError(f"uri must start with {PREFIX!r}")
    params: dict[str, str] = {}
    for param in uri[len(PREFIX):].split("|"):
        key, sep, value = param.partition("=")
        if not sep:
            raise UriError(f"parameter {param!r} is not key=value")
        if not key or not value:
            raise UriError(f"parameter {param!r} has an empty key or value")
        if key not in {"path", "require_hugepages"}:
            raise UriError(f"unknown parameter {key!r}")
        if key in params:
            raise UriError(f"duplicate {key} parameter")
        params[key] = value
    if "path" not in params:
        raise UriError("missing path parameter")
    hugepages = params.get("require_hugepages", "false")
    if hugepages not in _BOOLEANS:
        raise UriError(f"require_hugepages must be true or false, got {hugepages!r}")
    _check_path(params["path"])
    return RegionUri(path=params["path"], require_hugepages=_BOOLEANS[hugepages])


def _check_path(path: str) -> None:
    if not path.startswith("/"):
        raise UriError(f"path {path!r} is not absolute")
    for ch in _FORBIDDEN_IN_PATH:
        if ch in path:
            raise UriError(f"path {path!r} contains {ch!r}")
    if "\x00" in path:
        raise UriError("path contains a NUL byte")
    parts = path.split("/")[1:]
    if any(part in {".", ".."} for part in parts):
        raise UriError(f"path {path!r} has a '.' or '..' component")
    if any(part == "" for part in parts):
        raise UriError(f"path {path!r} has an empty component")
