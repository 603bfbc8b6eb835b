"""``tensorpool status --endpoint tcp://...`` against a CURVE plane, and ``keygen``."""

from __future__ import annotations

import io
import json
import socket
import tomllib
from typing import TYPE_CHECKING

import pytest
import zmq
from zmq.utils import z85

from actors.admin import start_admin
from tensorpool_client.admin_cli import events_main, keygen_main, status_main
from tests.admin.helpers import make_config

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import pykka

    from actors.admin import AdminPlane
    from tests.admin.helpers import FakeDriver

KeyPair = tuple[str, str]  # (public, secret), Z85


def _keys() -> KeyPair:
    public, secret = zmq.curve_keypair()
    return public.decode(), secret.decode()


def _dash_keys() -> KeyPair:
    """A pair whose public key starts with ``-``, as about one in 85 does.

    The server key is always such a key so that every test passing ``--server-key KEY``
    also proves the CLI takes a value argparse would otherwise read as an option.
    """
    while not (keys := _keys())[0].startswith("-"):
        pass
    return keys


SERVER, FRIEND, STRANGER = _dash_keys(), _keys(), _keys()


def _key_file(directory: Path, keys: KeyPair, mode: int = 0o600, name: str = "client.key") -> Path:
    path = directory / name
    path.write_text(f'public_key = "{keys[0]}"\nsecret_key = "{keys[1]}"\n')
    path.chmod(mode)
    return path


@pytest.fixture
def curve_plane(run_dir: Path, fake_driver: pykka.ActorRef[FakeDriver]) -> Iterator[AdminPlane]:
    config = make_config(
        run_dir,
        tcp_endpoint="tcp://127.0.0.1:*",
        curve_public_key=SERVER[0],
        curve_secret_key=SERVER[1],
        curve_authorized_clients=(FRIEND[0],),
    )
    admin = start_admin(config, lambda: {"aeron_dir": "/dev/shm/aeron-test"})
    admin.bind_driver(fake_driver)
    try:
        yield admin
    finally:
        admin.stop()


def _tcp(plane: AdminPlane) -> str:
    endpoint = plane.endpoints[2]
    assert endpoint.startswith("tcp://127.0.0.1:")
    return endpoint


def _status_args(plane: AdminPlane, key_file: Path, server: str = SERVER[0]) -> list[str]:
    return [
        "--endpoint",
        _tcp(plane),
        "--server-key",
        server,
        "--client-key-file",
        str(key_file),
        "--timeout",
        "1",
    ]


class TestStatusOverCurve:
    def test_the_right_keys_print_the_status(self, curve_plane: AdminPlane, tmp_path: Path) -> None:
        out = io.StringIO()
        assert status_main(_status_args(curve_plane, _key_file(tmp_path, FRIEND)), out=out) == 0
        first = out.getvalue().splitlines()[0]
        assert first.startswith("driver  instance_id=driver-01  state=Driver.Running")

    def test_the_right_keys_with_json(self, curve_plane: AdminPlane, tmp_path: Path) -> None:
        out = io.StringIO()
        args = [*_status_args(curve_plane, _key_file(tmp_path, FRIEND)), "--json"]
        assert status_main(args, out=out) == 0
        assert json.loads(out.getvalue())["streams"][0]["epoch"] == 77

    @pytest.mark.parametrize("case", ["wrong server key", "unauthorised client"])
    def test_wrong_keys_are_one_line_and_exit_1(
        self,
        curve_plane: AdminPlane,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        case: str,
    ) -> None:
        if case == "wrong server key":
            args = _status_args(curve_plane, _key_file(tmp_path, FRIEND), server=_keys()[0])
        else:
            args = _status_args(curve_plane, _key_file(tmp_path, STRANGER))
        out = io.StringIO()
        assert status_main(args, out=out) == 1
        assert out.getvalue() == ""
        assert capsys.readouterr().err == (
            f"tensorpool status: no answer from {_tcp(curve_plane)} within 1 s"
            " (wrong keys or not authorised?)\n"
        )

    def test_nothing_listening_is_one_line_and_exit_1(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with socket.socket() as probe:  # a port that was free a moment ago
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        endpoint = f"tcp://127.0.0.1:{port}"
        args = ["--endpoint", endpoint, "--server-key", SERVER[0], "--timeout", "0.5"]
        args += ["--client-key-file", str(_key_file(tmp_path, FRIEND))]
        assert status_main(args) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert err.startswith(f"tensorpool status: no driver answering at {endpoint}")

    def test_the_ipc_socket_still_needs_no_keys(self, curve_plane: AdminPlane) -> None:
        out = io.StringIO()
        assert status_main(["--endpoint", curve_plane.endpoints[0], "--json"], out=out) == 0
        assert json.loads(out.getvalue())["driver"]["instance_id"] == "driver-01"


class TestUnusableKeys:
    @pytest.mark.parametrize(
        "missing", [[], ["--server-key", SERVER[0]], ["--client-key-file", "k"]]
    )
    def test_tcp_without_both_keys_is_one_line_and_exit_2(
        self, curve_plane: AdminPlane, capsys: pytest.CaptureFixture[str], missing: list[str]
    ) -> None:
        assert status_main(["--endpoint", _tcp(curve_plane), *missing]) == 2
        assert capsys.readouterr().err == (
            f"tensorpool status: {_tcp(curve_plane)} is served only with CURVE:"
            " give --server-key Z85 and --client-key-file FILE (see --help)\n"
        )

    def test_events_over_tcp_without_keys_is_exit_2(
        self, curve_plane: AdminPlane, capsys: pytest.CaptureFixture[str]
    ) -> None:
        args = ["--endpoint", _tcp(curve_plane), "--events-endpoint", curve_plane.endpoints[1]]
        assert events_main(args) == 2
        assert "is served only with CURVE" in capsys.readouterr().err

    @pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
    def test_a_key_file_others_can_read_is_refused_with_exit_2(
        self,
        curve_plane: AdminPlane,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        mode: int,
    ) -> None:
        key_file = _key_file(tmp_path, FRIEND, mode)
        assert status_main(_status_args(curve_plane, key_file)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert f"is accessible by group/others (mode {mode:04o})" in err
        assert f"chmod 600 {key_file}" in err

    @pytest.mark.parametrize(
        ("content", "error"),
        [
            ("not toml [", "is not a key file"),
            (f'public_key = "{FRIEND[0]}"\n', "secret_key in"),
            (f'public_key = "short"\nsecret_key = "{FRIEND[1]}"\n', "not a 40-character Z85"),
            (
                f'public_key = "{STRANGER[0]}"\nsecret_key = "{FRIEND[1]}"\n',
                "does not belong to its secret_key",
            ),
            (f'public_key = "{"~" * 40}"\nsecret_key = "{FRIEND[1]}"\n', "not a 40-character Z85"),
        ],
    )
    def test_a_broken_key_file_is_exit_2(
        self,
        curve_plane: AdminPlane,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        content: str,
        error: str,
    ) -> None:
        key_file = tmp_path / "client.key"
        key_file.write_text(content)
        key_file.chmod(0o600)
        assert status_main(_status_args(curve_plane, key_file)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert error in err

    def test_a_missing_key_file_is_exit_2(
        self, curve_plane: AdminPlane, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert status_main(_status_args(curve_plane, tmp_path / "nope.key")) == 2
        assert "cannot open --client-key-file" in capsys.readouterr().err

    def test_a_garbled_server_key_is_exit_2(
        self, curve_plane: AdminPlane, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        args = _status_args(curve_plane, _key_file(tmp_path, FRIEND), server="x" * 39)
        assert status_main(args) == 2
        assert "--server-key is not a 40-character Z85 CURVE key" in capsys.readouterr().err

    def test_keys_with_an_ipc_endpoint_are_exit_2(
        self, curve_plane: AdminPlane, capsys: pytest.CaptureFixture[str]
    ) -> None:
        args = ["--endpoint", curve_plane.endpoints[0], "--server-key", SERVER[0]]
        assert status_main(args) == 2
        assert "apply to tcp:// endpoints" in capsys.readouterr().err


class TestKeygen:
    def test_prints_two_valid_z85_keys_of_one_pair(self) -> None:
        out = io.StringIO()
        assert keygen_main([], out=out) == 0
        keys = tomllib.loads(out.getvalue())
        assert set(keys) == {"public_key", "secret_key"}
        public, secret = keys["public_key"].encode(), keys["secret_key"].encode()
        assert len(public) == len(secret) == 40
        assert len(z85.decode(public)) == len(z85.decode(secret)) == 32
        assert zmq.curve_public(secret) == public

    def test_each_run_makes_a_new_pair(self) -> None:
        first, second = io.StringIO(), io.StringIO()
        assert keygen_main([], out=first) == 0
        assert keygen_main([], out=second) == 0
        assert first.getvalue() != second.getvalue()

    def test_out_writes_a_private_key_file_the_status_command_accepts(
        self, run_dir: Path, tmp_path: Path, fake_driver: pykka.ActorRef[FakeDriver]
    ) -> None:
        key_file = tmp_path / "me.key"
        printed = io.StringIO()
        assert keygen_main(["--out", str(key_file)], out=printed) == 0
        assert key_file.stat().st_mode & 0o777 == 0o600
        public = tomllib.loads(printed.getvalue())["public_key"]
        assert set(tomllib.loads(printed.getvalue())) == {"public_key"}  # no secret on stdout
        config = make_config(
            run_dir,
            tcp_endpoint="tcp://127.0.0.1:*",
            curve_public_key=SERVER[0],
            curve_secret_key=SERVER[1],
            curve_authorized_clients=(public,),
        )
        admin = start_admin(config, dict)
        admin.bind_driver(fake_driver)
        try:
            out = io.StringIO()
            assert status_main(_status_args(admin, key_file), out=out) == 0
        finally:
            admin.stop()
        assert out.getvalue().startswith("driver  instance_id=driver-01")

    def test_out_never_overwrites(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        existing = tmp_path / "me.key"
        existing.write_text("keep me")
        assert keygen_main(["--out", str(existing)]) == 2
        assert existing.read_text() == "keep me"
        assert "cannot create" in capsys.readouterr().err
