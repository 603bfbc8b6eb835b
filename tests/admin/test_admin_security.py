"""Who may talk to the admin plane: owner-only files, safe run dirs, CURVE on TCP."""

from __future__ import annotations

import json
import os
import pwd
import socket
import stat
from typing import TYPE_CHECKING

import pytest
import zmq

from actors.admin import AdminConfigError, AdminStartError, start_admin
from tests.admin.helpers import json_object, make_config, request, zmq_context

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from tensorpool_config import DriverConfig


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


class TestRunDir:
    def test_run_dir_is_0700_and_socket_files_0600(self, run_dir: Path) -> None:
        admin = start_admin(make_config(run_dir), dict)
        try:
            assert _mode(run_dir) == 0o700
            assert _mode(run_dir.parent) == 0o700  # created by mkdtemp, checked not changed
            assert _mode(run_dir / "admin.sock") == 0o600
            assert _mode(run_dir / "events.sock") == 0o600
        finally:
            admin.stop()

    def test_missing_parents_are_created_0700(self, run_dir: Path) -> None:
        deep = run_dir / "tensorpool-me" / "driver-01"
        admin = start_admin(make_config(deep), dict)
        try:
            assert _mode(run_dir) == 0o700
            assert _mode(run_dir / "tensorpool-me") == 0o700
            assert _mode(deep) == 0o700
        finally:
            admin.stop()

    @pytest.mark.parametrize("mode", [0o777, 0o770, 0o702])
    def test_a_group_or_world_writable_run_dir_is_refused(self, run_dir: Path, mode: int) -> None:
        run_dir.mkdir()
        run_dir.chmod(mode)
        with pytest.raises(AdminStartError, match="group/world-writable"):
            start_admin(make_config(run_dir), dict)
        assert not (run_dir / "admin.sock").exists()

    def test_a_symlinked_run_dir_is_refused(self, run_dir: Path) -> None:
        target = run_dir.parent / "elsewhere"
        target.mkdir(mode=0o700)
        run_dir.symlink_to(target)
        with pytest.raises(AdminStartError, match="symlink"):
            start_admin(make_config(run_dir), dict)

    @pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
    def test_a_run_dir_owned_by_another_user_is_refused(self, run_dir: Path) -> None:
        run_dir.mkdir(mode=0o700)
        os.chown(run_dir, pwd.getpwnam("nobody").pw_uid, -1)
        with pytest.raises(AdminStartError, match="owned by uid"):
            start_admin(make_config(run_dir), dict)

    def test_a_world_writable_parent_without_sticky_bit_is_refused(self, run_dir: Path) -> None:
        run_dir.parent.chmod(0o777)
        with pytest.raises(AdminStartError, match="without the sticky bit"):
            start_admin(make_config(run_dir / "inner"), dict)

    def test_a_stale_socket_from_a_dead_driver_is_replaced(self, run_dir: Path) -> None:
        run_dir.mkdir(mode=0o700)
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(str(run_dir / "admin.sock"))
        stale.close()  # the file stays, nobody listens
        admin = start_admin(make_config(run_dir), dict)
        try:
            assert request(admin.endpoints[0], b'{"cmd": "ping"}')["ok"] is True
        finally:
            admin.stop()

    def test_a_live_driver_on_the_same_run_dir_is_not_displaced(self, run_dir: Path) -> None:
        first = start_admin(make_config(run_dir), dict)
        try:
            with pytest.raises(AdminStartError, match="already serving"):
                start_admin(make_config(run_dir), dict)
            assert request(first.endpoints[0], b'{"cmd": "ping"}')["ok"] is True
        finally:
            first.stop()

    def test_a_regular_file_in_place_of_the_socket_is_refused(self, run_dir: Path) -> None:
        run_dir.mkdir(mode=0o700)
        (run_dir / "events.sock").write_text("not a socket")
        with pytest.raises(AdminStartError, match="not a socket"):
            start_admin(make_config(run_dir), dict)

    def test_a_run_dir_too_long_for_a_unix_socket_is_refused(self, run_dir: Path) -> None:
        with pytest.raises(AdminStartError, match="longer than a unix socket allows"):
            start_admin(make_config(run_dir / ("x" * 120)), dict)


def _keys() -> tuple[str, str]:
    public, secret = zmq.curve_keypair()
    return public.decode(), secret.decode()


def _tcp_config(
    run_dir: Path, clients: Iterable[str], server: tuple[str, str] | None = None
) -> DriverConfig:
    public, secret = server or _keys()
    return make_config(
        run_dir,
        tcp_endpoint="tcp://127.0.0.1:*",
        curve_public_key=public,
        curve_secret_key=secret,
        curve_authorized_clients=tuple(clients),
    )


def _curve_ping(
    endpoint: str, server_public: str, client: tuple[str, str]
) -> dict[str, object] | None:
    sock = zmq_context().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 1500)
    sock.curve_serverkey = server_public.encode()
    sock.curve_publickey = client[0].encode()
    sock.curve_secretkey = client[1].encode()
    try:
        sock.connect(endpoint)
        sock.send(b'{"cmd": "ping"}')
        return json_object(json.loads(sock.recv()))
    except zmq.Again:
        return None
    finally:
        sock.close()


class TestCurve:
    def test_tcp_without_curve_keys_is_refused(self, run_dir: Path) -> None:
        config = make_config(run_dir, tcp_endpoint="tcp://127.0.0.1:*")
        with pytest.raises(AdminConfigError, match="only served with CURVE"):
            start_admin(config, dict)
        assert not run_dir.exists()

    def test_tcp_without_authorized_clients_is_refused(self, run_dir: Path) -> None:
        with pytest.raises(AdminConfigError, match="curve_authorized_clients is empty"):
            start_admin(_tcp_config(run_dir, []), dict)

    def test_a_public_key_of_another_secret_key_is_refused(self, run_dir: Path) -> None:
        mismatched = (_keys()[0], _keys()[1])
        with pytest.raises(AdminConfigError, match="does not belong"):
            start_admin(_tcp_config(run_dir, [_keys()[0]], server=mismatched), dict)

    def test_a_garbled_key_is_refused(self, run_dir: Path) -> None:
        bad = ("short", _keys()[1])
        with pytest.raises(AdminConfigError, match="40-character Z85"):
            start_admin(_tcp_config(run_dir, [_keys()[0]], server=bad), dict)

    def test_the_authorized_client_is_answered_and_a_stranger_is_not(self, run_dir: Path) -> None:
        server, friend, stranger = _keys(), _keys(), _keys()
        admin = start_admin(_tcp_config(run_dir, [friend[0]], server=server), dict)
        try:
            tcp = admin.endpoints[2]
            assert tcp.startswith("tcp://127.0.0.1:")
            reply = _curve_ping(tcp, server[0], friend)
            assert reply is not None
            assert reply["ok"] is True
            assert _curve_ping(tcp, server[0], stranger) is None
            # the unix socket stays plain for local users
            assert request(admin.endpoints[0], b'{"cmd": "ping"}')["ok"] is True
        finally:
            admin.stop()
