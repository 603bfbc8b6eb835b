"""``tensorpool status`` and ``tensorpool events``: ask a running driver what it is doing.

The CLI finds the driver exactly as the driver found its own sockets: the same ``--config``
file and environment go through ``config.load_config``, whose ``admin.run_dir`` names the
directory holding ``admin.sock`` (status, REQ) and ``events.sock`` (events, SUB). A driver
that also serves status over TCP does so only with CURVE: ``--endpoint tcp://HOST:PORT``
needs ``--server-key`` and ``--client-key-file`` (a key pair made by ``keygen_main``). Every
wait is bounded, so a driver that is not there costs one line on stderr and exit code 1,
never a hang; unusable options or key files are one line and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import stat
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, TextIO

import zmq
from zmq.utils import z85
from zmq.utils.monitor import recv_monitor_message

from messages.admin import (
    CMD_PROBE,
    CMD_STATUS,
    PROBE_EVENT_KIND,
    events_socket_path,
    ipc_endpoint,
    status_socket_path,
)
from shm.paths import namespace_dir
from tensorpool_client.admin_format import format_event, format_status
from tensorpool_config import ConfigError, load_config

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

EXIT_OK: Final = 0
EXIT_NO_DRIVER: Final = 1
EXIT_USAGE: Final = 2
_FOLLOW_POLL_MS: Final = 200
_PROBE_FIRST_WAIT_S: Final = 0.01  # then doubled up to _PROBE_MAX_WAIT_S between probes
_PROBE_MAX_WAIT_S: Final = 0.2
_Z85_KEY_CHARS: Final = 40
_KEY_FILE_MAX_BYTES: Final = 4096

_KEY_FILE_HELP: Final = """\
CURVE (tcp:// endpoints):
  A driver serves status over TCP only with CURVE. Give the server's public key
  (admin.curve_public_key) with --server-key and your key pair with --client-key-file;
  your public key must be listed in the driver's admin.curve_authorized_clients.
  The key file is what `keygen` prints, two TOML lines of 40-character Z85 keys:
      public_key = "..."
      secret_key = "..."
  and must be readable by you alone (chmod 600), else it is refused (exit 2).
"""

Socket = zmq.Socket[bytes]


def _line(stream: TextIO, text: str) -> None:
    stream.write(text + "\n")
    stream.flush()


class _NoDriverError(Exception):
    """Nothing answered: the one line the user sees."""


class _UsageError(Exception):
    """Unusable options or key file: the one line the user sees, exit 2."""


@dataclass(frozen=True, slots=True)
class _CurveClient:
    """Z85 keys (bytes, as zmq takes them) for a CURVE connection to the TCP status endpoint."""

    server_key: bytes
    public_key: bytes
    secret_key: bytes

    def apply(self, sock: Socket) -> None:
        sock.curve_serverkey = self.server_key
        sock.curve_publickey = self.public_key
        sock.curve_secretkey = self.secret_key


def _common_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=_KEY_FILE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, help="the driver's TOML file (default: built-in)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--endpoint",
        help="status endpoint to use instead of the configured run dir (ipc://PATH, or"
        " tcp://HOST:PORT with --server-key and --client-key-file)",
    )
    parser.add_argument(
        "--server-key", metavar="Z85", help="the driver's CURVE public key (tcp:// only)"
    )
    parser.add_argument(
        "--client-key-file",
        type=Path,
        metavar="FILE",
        help="your CURVE key pair, mode 0600 (tcp:// only; format below)",
    )
    return parser


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv`` with a Z85 value after ``--server-key`` always taken as that value.

    Z85's alphabet includes ``-``, so about one key in 85 starts with it, and argparse
    would read ``--server-key -abc...`` as a missing value followed by an unknown option.
    Joining the pair as ``--server-key=-abc...`` first keeps the documented spelling
    working for every key.
    """
    given = list(sys.argv[1:] if argv is None else argv)
    joined: list[str] = []
    index = 0
    while index < len(given):
        if given[index] == "--server-key" and index + 1 < len(given):
            joined.append(f"--server-key={given[index + 1]}")
            index += 2
        else:
            joined.append(given[index])
            index += 1
    return parser.parse_args(joined)


def _z85_key(value: object, what: str, prog: str) -> bytes:
    """A 40-character Z85 CURVE key as bytes, or _UsageError naming ``what``."""
    if not isinstance(value, str):
        raise _UsageError(f"{prog}: {what} is missing (or not a string)")
    problem = f"{prog}: {what} is not a 40-character Z85 CURVE key"
    raw = value.strip().encode("ascii", errors="replace")
    if len(raw) != _Z85_KEY_CHARS:
        raise _UsageError(problem)
    try:
        z85.decode(raw)
    except (ValueError, KeyError, IndexError) as exc:
        raise _UsageError(problem) from exc
    return raw


def _read_key_file(path: Path, prog: str) -> bytes:
    """The bytes of an owner-only regular file; _UsageError otherwise."""
    what = f"--client-key-file {path}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise _UsageError(f"{prog}: cannot open {what}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        mode = stat.S_IMODE(info.st_mode)
        if not stat.S_ISREG(info.st_mode):
            raise _UsageError(f"{prog}: {what} is not a regular file")
        if mode & 0o077:
            raise _UsageError(
                f"{prog}: {what} is accessible by group/others (mode {mode:04o});"
                f" a secret key must be private: chmod 600 {path}"
            )
        data = file.read(_KEY_FILE_MAX_BYTES + 1)
    if len(data) > _KEY_FILE_MAX_BYTES:
        raise _UsageError(f"{prog}: {what} is too large to be a key file")
    return data


def _load_client_keys(path: Path, prog: str) -> tuple[bytes, bytes]:
    """(public, secret) Z85 keys from a key file (see _KEY_FILE_HELP)."""
    data = _read_key_file(path, prog)
    try:
        document = tomllib.loads(data.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise _UsageError(
            f"{prog}: --client-key-file {path} is not a key file"
            f' (public_key = "..." and secret_key = "..."): {exc}'
        ) from exc
    public = _z85_key(document.get("public_key"), f"public_key in {path}", prog)
    secret = _z85_key(document.get("secret_key"), f"secret_key in {path}", prog)
    if zmq.curve_public(secret) != public:
        raise _UsageError(f"{prog}: public_key in {path} does not belong to its secret_key")
    return public, secret


def _curve_client(args: argparse.Namespace, endpoint: str, prog: str) -> _CurveClient | None:
    """The CURVE keys for a tcp:// endpoint; None for ipc; _UsageError when they do not fit."""
    given = args.server_key is not None or args.client_key_file is not None
    if not endpoint.startswith("tcp://"):
        if given:
            raise _UsageError(f"{prog}: --server-key/--client-key-file apply to tcp:// endpoints")
        return None
    if args.server_key is None or args.client_key_file is None:
        raise _UsageError(
            f"{prog}: {endpoint} is served only with CURVE:"
            " give --server-key Z85 and --client-key-file FILE (see --help)"
        )
    if not zmq.has("curve"):
        raise _UsageError(f"{prog}: this libzmq has no CURVE support")
    server = _z85_key(args.server_key, "--server-key", prog)
    public, secret = _load_client_keys(args.client_key_file, prog)
    return _CurveClient(server, public, secret)


@dataclass(frozen=True, slots=True)
class _Target:
    """Where to ask, and (from a configuration) which driver the answer should come from."""

    endpoint: str
    run_dir: Path | None = None
    curve: _CurveClient | None = None
    namespace_dir: Path | None = None


def _locate(args: argparse.Namespace, prog: str) -> _Target:
    """The status endpoint from --endpoint, or from --config and the environment."""
    if args.endpoint:
        endpoint = str(args.endpoint)
        return _Target(endpoint, curve=_curve_client(args, endpoint, prog))
    if args.server_key is not None or args.client_key_file is not None:
        raise _UsageError(f"{prog}: --server-key/--client-key-file need --endpoint tcp://...")
    config = load_config(args.config, os.environ)
    if not config.admin.enabled or config.admin.run_dir is None:
        raise _NoDriverError(f"{prog}: the admin plane is disabled in this configuration")
    run_dir = config.admin.run_dir
    base = Path(os.path.realpath(config.shm.base_dir))
    return _Target(
        ipc_endpoint(status_socket_path(run_dir)),
        run_dir=run_dir,
        namespace_dir=namespace_dir(base, config.shm.namespace),
    )


def _warn_if_another_driver(target: _Target, body: object, prog: str) -> None:
    """Drivers left at one ``instance_id`` share a run dir, and only the first serves it: say
    so when the driver that answered is not the one this configuration describes."""
    if target.namespace_dir is None or not isinstance(body, dict):
        return
    driver = body.get("driver")
    served = driver.get("shm_namespace_dir") if isinstance(driver, dict) else None
    if isinstance(served, str) and Path(served) != target.namespace_dir:
        _line(
            sys.stderr,
            f"{prog}: note: the driver answering at {target.endpoint} serves {served}, not"
            f" {target.namespace_dir} of this configuration (drivers with the same"
            " driver.instance_id share one admin run dir; give each its own)",
        )


def _request(
    context: zmq.Context[Socket],
    endpoint: str,
    request: Mapping[str, object],
    timeout_s: float,
    prog: str,
    *,
    curve: _CurveClient | None = None,
) -> object:
    """One REQ round trip bounded by ``timeout_s``; raise _NoDriverError on silence."""
    silent = f"{prog}: no driver answering at {endpoint} (is the driver running?)"
    if endpoint.startswith("ipc://") and not Path(endpoint.removeprefix("ipc://")).exists():
        raise _NoDriverError(silent)
    deadline = time.monotonic() + timeout_s
    sock = context.socket(zmq.REQ)
    monitor: Socket | None = None
    try:
        sock.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            curve.apply(sock)
            monitor = sock.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED)
        sock.setsockopt(zmq.SNDTIMEO, _ms_until(deadline))
        sock.connect(endpoint)
        sock.send(json.dumps(request).encode())
        sock.setsockopt(zmq.RCVTIMEO, _ms_until(deadline))
        raw = sock.recv()
    except zmq.ZMQError as exc:
        if monitor is not None:
            silent = _curve_silence(monitor, endpoint, timeout_s, prog)
        raise _NoDriverError(silent) from exc
    finally:
        if monitor is not None:
            sock.disable_monitor()
            monitor.close(linger=0)
        sock.close(linger=0)
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise _NoDriverError(f"{prog}: unreadable reply from {endpoint}: {raw[:80]!r}") from exc


def _ms_until(deadline: float) -> int:
    return max(1, int((deadline - time.monotonic()) * 1000))


def _curve_silence(monitor: Socket, endpoint: str, timeout_s: float, prog: str) -> str:
    """Why a CURVE request went unanswered, from what the connection got to."""
    seen: set[int] = set()
    while monitor.poll(0):
        message = recv_monitor_message(monitor, zmq.NOBLOCK)
        if isinstance(message, dict):
            seen.add(int(message["event"]))
    if zmq.EVENT_HANDSHAKE_SUCCEEDED in seen:
        return f"{prog}: no answer from {endpoint} within {timeout_s:g} s (driver stalled?)"
    if zmq.EVENT_CONNECTED in seen:  # the server dropped the handshake, or ZAP refused us
        return (
            f"{prog}: no answer from {endpoint} within {timeout_s:g} s"
            " (wrong keys or not authorised?)"
        )
    return f"{prog}: no driver answering at {endpoint} (is the driver running?)"


def _guarded(prog: str, command: Callable[[], int]) -> int:
    """Run ``command``; bad configuration or options are exit 2, no (working) driver exit 1."""
    try:
        return command()
    except ConfigError as exc:
        _line(sys.stderr, f"{prog}: {exc}")
        return EXIT_USAGE
    except _UsageError as exc:
        _line(sys.stderr, str(exc))
        return EXIT_USAGE
    except _NoDriverError as exc:
        _line(sys.stderr, str(exc))
        return EXIT_NO_DRIVER


def status_main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """``status [--config FILE | --endpoint EP [--server-key Z85 --client-key-file FILE]]
    [--json] [--timeout S]``: print what the driver holds."""
    prog = "tensorpool status"
    parser = _common_parser(prog, "Show a running driver's streams, leases and counters.")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait (default 3)")
    args = _parse(parser, argv)
    stdout = out if out is not None else sys.stdout
    context: zmq.Context[Socket] = zmq.Context()

    def status() -> int:
        target = _locate(args, prog)
        reply = _request(
            context, target.endpoint, {"cmd": CMD_STATUS}, args.timeout, prog, curve=target.curve
        )
        body = _ok_reply(reply, target.endpoint, prog).get("status")
        _warn_if_another_driver(target, body, prog)
        if args.json:
            _line(stdout, json.dumps(body, indent=2))
        elif isinstance(body, dict):
            _line(stdout, format_status(body))
        return EXIT_OK

    try:
        return _guarded(prog, status)
    finally:
        context.term()


def _ok_reply(reply: object, endpoint: str, prog: str) -> dict[str, object]:
    """``reply`` if it says ``"ok": true``; _NoDriverError with the driver's error otherwise."""
    if not isinstance(reply, dict) or reply.get("ok") is not True:
        error = reply.get("error") if isinstance(reply, dict) else reply
        raise _NoDriverError(f"{prog}: the driver at {endpoint} answered with an error: {error}")
    return reply


def events_main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """``events [--config FILE] [--json] [--count N] [--timeout S]``: follow driver events.

    The "following" line is printed only once the subscription has provably joined (it
    received its own probe event), so every event emitted after that line is shown. Follows
    until Ctrl-C, until ``--count`` events arrived, or until ``--timeout`` seconds pass
    without an event (exit 1 if ``--count`` was not reached then, else 0).
    """
    prog = "tensorpool events"
    parser = _common_parser(prog, "Follow a running driver's lifecycle events.")
    parser.add_argument("--count", type=int, default=0, help="stop after N events")
    parser.add_argument(
        "--timeout",
        type=float,
        default=0.0,
        help="stop after S seconds without an event; also bounds joining (default 3 s)",
    )
    parser.add_argument(
        "--events-endpoint", help="events endpoint to use instead of the configured run dir"
    )
    args = _parse(parser, argv)
    stdout = out if out is not None else sys.stdout
    context: zmq.Context[Socket] = zmq.Context()
    sub = context.socket(zmq.SUB)

    def events() -> int:
        target = _locate(args, prog)
        run_dir = target.run_dir
        events_endpoint = args.events_endpoint or (
            ipc_endpoint(events_socket_path(run_dir)) if run_dir is not None else None
        )
        if events_endpoint is None:
            raise _UsageError(f"{prog}: --endpoint needs --events-endpoint")
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(events_endpoint)
        joined = _Join(context, target.endpoint, target.curve, events_endpoint, prog)
        early = joined.wait(sub, args.timeout or 3.0)
        _line(sys.stderr, f"{prog}: following {events_endpoint} (Ctrl-C to stop)")
        return _follow(sub, args, stdout, prog, early)

    try:
        return _guarded(prog, events)
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        sub.close(linger=0)
        context.term()


@dataclass(frozen=True, slots=True)
class _Join:
    """Probe the driver until ``sub`` receives the probe event: then it has joined."""

    context: zmq.Context[Socket]
    endpoint: str
    curve: _CurveClient | None
    events_endpoint: str
    prog: str

    def wait(self, sub: Socket, timeout_s: float) -> list[bytes]:
        """The events that arrived before our probe (to show first); raise when it never does.

        Each round trip proves a driver is there; the probe event follows every event the
        driver queued before it, so nothing published after it can be missed.
        """
        token = secrets.token_hex(8)
        request = {"cmd": CMD_PROBE, "token": token}
        deadline = time.monotonic() + timeout_s
        early: list[bytes] = []
        silent = _NoDriverError(
            f"{self.prog}: the driver at {self.endpoint} answers, but nothing arrived on"
            f" {self.events_endpoint} within {timeout_s:g} s (wrong --events-endpoint?)"
        )
        wait_s = _PROBE_FIRST_WAIT_S
        answered = False
        while True:
            remaining = max(deadline - time.monotonic(), 0.001)
            try:
                reply = _request(
                    self.context, self.endpoint, request, remaining, self.prog, curve=self.curve
                )
            except _NoDriverError:
                if answered:  # it did answer: the time ran out on a later probe
                    raise silent from None
                raise
            _ok_reply(reply, self.endpoint, self.prog)
            answered = True
            until = min(deadline, time.monotonic() + wait_s)
            while sub.poll(_ms_until(until)):
                raw = sub.recv()
                probe = _probe_token(raw)
                if probe == token:
                    return early
                if probe is None:
                    early.append(raw)
                if time.monotonic() >= until:
                    break
            if time.monotonic() >= deadline:
                raise silent
            wait_s = min(wait_s * 2, _PROBE_MAX_WAIT_S)


def _probe_token(raw: bytes) -> str | None:
    """The token of an ``admin.probe`` event ("" if it has none); None for any other event."""
    try:
        event = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("kind") != PROBE_EVENT_KIND:
        return None
    fields = event.get("fields")
    token = fields.get("token") if isinstance(fields, dict) else None
    return token if isinstance(token, str) else ""


def _follow(
    sub: Socket,
    args: argparse.Namespace,
    stdout: TextIO,
    prog: str,
    early: Sequence[bytes] = (),
) -> int:
    """Print ``early`` then what ``sub`` receives; ``admin.probe`` events are not shown."""
    seen = 0
    pending = list(early)
    last = time.monotonic()
    while args.count <= 0 or seen < args.count:
        if pending:
            raw = pending.pop(0)
        elif sub.poll(_FOLLOW_POLL_MS):
            raw = sub.recv()
        else:
            if args.timeout and time.monotonic() - last >= args.timeout:
                if args.count > 0:
                    _line(
                        sys.stderr, f"{prog}: {seen} of {args.count} events in {args.timeout:g} s"
                    )
                    return EXIT_NO_DRIVER
                return EXIT_OK
            continue
        if _probe_token(raw) is not None:  # ours or another follower's: not a driver event
            continue
        last = time.monotonic()
        seen += 1
        _show_event(raw, stdout, as_json=args.json)
    return EXIT_OK


def _show_event(raw: bytes, stdout: TextIO, *, as_json: bool) -> None:
    if as_json:
        _line(stdout, raw.decode(errors="replace"))
        return
    try:
        event = json.loads(raw)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        _line(stdout, f"(unreadable event: {raw[:80]!r})")
        return
    _line(stdout, format_event(event))


def keygen_main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """``keygen [--out FILE]``: print (or write, mode 0600) a new CURVE key pair."""
    prog = "tensorpool keygen"
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Make a CURVE key pair for the TCP status endpoint. For the driver, put"
        " the keys in admin.curve_public_key and admin.curve_secret_key. For a client, keep"
        " the pair in a file only you can read (--out does that), give it to"
        " `status --client-key-file`, and add its public key to the driver's"
        " admin.curve_authorized_clients.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write the pair to FILE (created 0600, never overwritten) and print only the"
        " public key line",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    stdout = out if out is not None else sys.stdout
    if not zmq.has("curve"):
        _line(sys.stderr, f"{prog}: this libzmq has no CURVE support")
        return EXIT_USAGE
    public, secret = zmq.curve_keypair()
    public_line = f'public_key = "{public.decode()}"'
    text = f'{public_line}\nsecret_key = "{secret.decode()}"\n'
    if args.out is None:
        stdout.write(text)
        stdout.flush()
        return EXIT_OK
    try:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        _line(sys.stderr, f"{prog}: cannot create {args.out}: {exc.strerror}")
        return EXIT_USAGE
    with os.fdopen(fd, "w") as file:
        file.write(text)
    _line(stdout, public_line)
    return EXIT_OK
