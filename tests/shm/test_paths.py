"""Directory naming (shm-layout.md §5, A-27)."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from shm import PathError, epoch_dir, header_ring_path, pool_path, stream_dir, user_dir_name
from shm.paths import sanitise_user, validate_namespace


def test_user_part_is_sanitised_to_the_c_character_set() -> None:
    assert sanitise_user("alice") == "alice"
    assert sanitise_user("a.b c@d") == "a_b_c_d"
    assert sanitise_user("x-y_Z9") == "x-y_Z9"
    assert sanitise_user("") == "unknown"
    assert sanitise_user(None) == "unknown"


def test_user_dir_uses_the_effective_uid_name() -> None:
    name = pwd.getpwuid(os.geteuid()).pw_name
    assert user_dir_name() == f"tensorpool-{sanitise_user(name)}"


def test_unknown_uid_gives_unknown() -> None:
    assert user_dir_name(uid=2**31 - 7) == "tensorpool-unknown"


def test_paths_follow_the_layout() -> None:
    user = user_dir_name()
    base = Path("/dev/shm")
    assert stream_dir(base, "default", 10000) == base / user / "default" / "10000"
    assert epoch_dir(base, "ns", 1, 86400123456789) == base / user / "ns" / "1" / "86400123456789"
    assert header_ring_path(base, "ns", 1, 2).name == "header.ring"
    assert pool_path(base, "ns", 1, 2, 3) == base / user / "ns" / "1" / "2" / "3.pool"


@pytest.mark.parametrize("namespace", ["", "a/b", "..", "a.b", "sp ace", "ü"])
def test_bad_namespaces_are_refused(namespace: str) -> None:
    with pytest.raises(PathError, match="namespace"):
        validate_namespace(namespace)


def test_relative_base_and_out_of_range_ids_are_refused() -> None:
    with pytest.raises(PathError):
        stream_dir(Path("rel"), "default", 1)
    with pytest.raises(PathError):
        stream_dir(Path("/x"), "default", 2**32)
    with pytest.raises(PathError):
        pool_path(Path("/x"), "default", 1, 1, 70000)
