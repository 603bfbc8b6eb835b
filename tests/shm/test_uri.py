"""Region URI grammar (shm-layout.md §6, A-24)."""

from __future__ import annotations

import pytest

from shm import RegionUri, UriError, format_region_uri, parse_region_uri


def test_format_emits_hugepages_only_when_true() -> None:
    assert format_region_uri("/dev/shm/a/header.ring") == "shm:file?path=/dev/shm/a/header.ring"
    assert format_region_uri("/h/1.pool", True) == "shm:file?path=/h/1.pool|require_hugepages=true"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("shm:file?path=/dev/shm/x", RegionUri("/dev/shm/x", False)),
        ("shm:file?path=/dev/shm/x|require_hugepages=true", RegionUri("/dev/shm/x", True)),
        ("shm:file?path=/dev/shm/x|require_hugepages=false", RegionUri("/dev/shm/x", False)),
        ("shm:file?require_hugepages=true|path=/x", RegionUri("/x", True)),
    ],
)
def test_parse_accepts_both_reference_forms(uri: str, expected: RegionUri) -> None:
    assert parse_region_uri(uri) == expected


def test_round_trip() -> None:
    for huge in (False, True):
        assert parse_region_uri(format_region_uri("/a/b/1.pool", huge)) == RegionUri(
            "/a/b/1.pool", huge
        )


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("file?path=/x", "must start with"),
        ("shm:file:path=/x", "must start with"),
        ("SHM:file?path=/x", "must start with"),
        ("shm:file?", "not key=value"),
        ("shm:file?path", "not key=value"),
        ("shm:file?path=", "empty key or value"),
        ("shm:file?=/x", "empty key or value"),
        ("shm:file?path=/x|", "not key=value"),
        ("shm:file?path=/x||require_hugepages=true", "not key=value"),
        ("shm:file?path=/x|mode=rw", "unknown parameter"),
        ("shm:file?path=/x|path=/y", "duplicate path"),
        ("shm:file?path=/x|require_hugepages=true|require_hugepages=true", "duplicate"),
        ("shm:file?path=/x|require_hugepages=TRUE", "true or false"),
        ("shm:file?path=/x|require_hugepages=1", "true or false"),
        ("shm:file?path=/x|require_hugepages=yes", "true or false"),
        ("shm:file?require_hugepages=true", "missing path"),
        ("shm:file?path=relative/x", "not absolute"),
        ("shm:file?path=/a/../etc/passwd", r"'\.\.' component"),
        ("shm:file?path=/a/./b", "component"),
        ("shm:file?path=/a//b", "empty component"),
        ("shm:file?path=/a b", "contains ' '"),
        ("shm:file?path=/a?b", "contains '\\?'"),
        ("shm:file?path=/" + "a" * 4096, "longer than 4096"),
    ],
)
def test_parse_rejects_malformed_uris(uri: str, message: str) -> None:
    with pytest.raises(UriError, match=message):
        parse_region_uri(uri)


def test_ampersand_is_not_a_separator() -> None:
    parsed = parse_region_uri("shm:file?path=/x&require_hugepages=true")
    assert parsed == RegionUri("/x&require_hugepages=true", False)


def test_exactly_4096_bytes_is_accepted() -> None:
    prefix = "shm:file?path=/"
    uri = prefix + "a" * (4096 - len(prefix))
    assert len(uri) == 4096
    assert parse_region_uri(uri).path.startswith("/a")


def test_format_refuses_what_parse_would_refuse() -> None:
    with pytest.raises(UriError):
        format_region_uri("relative")
    with pytest.raises(UriError):
        format_region_uri("/a|b")
