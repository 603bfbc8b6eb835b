"""``tensorpool status`` and ``tensorpool events``: ask a running driver what it is doing.

The CLI finds the driver exactly as the driver found its own sockets: the same ``--config``
file and environment go through ``config.load_config``, whose ``admin.run_dir`` names the
directory holding ``admin.sock`` (status, REQ) and ``events.sock`` (events, SUB). Every wait
is bounded, so a driver that is not there costs one line on stderr and exit code 1, never a
hang.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final, TextIO

import zmq

from client.admin_format import format_event, format_status
from client.admin_protocol import (
    CMD_PING,
    CMD_STATUS,
    events_socket_path,
    ipc_endpoint,
    status_socket_path,
)
from config import ConfigError, load_config

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

EXIT_OK: Final = 0
EXIT_NO_DRIVER: Final = 1
EXIT_USAGE: Final = 2
_FOLLOW_POLL_MS: Final = 200

Socket = zmq.Socket[bytes]


def _line(stream: TextIO, text: str) -> None:
    stream.write(text + "\n")
    stream.flush()


class _NoDriverError(Exception):
    """Nothing answered: the one line the user sees."""


def _common_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", type=Path, help="the driver's TOML file (default: built-in)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--endpoint", help="status endpoint to use instead of the configured run dir"
    )
    return parser


def _locate(args: argparse.Namespace, prog: str) -> tuple[str, Path | None]:
    """(status endpoint, run dir) from --endpoint, or from --config and the environment."""
    if args.endpoint:
        return str(args.endpoint), None
    config = load_config(args.config, os.environ)
    if not config.admin.enabled or config.admin.run_dir is None:
        raise _NoDriverError(f"{prog}: the admin plane is disabled in this configuration")
    run_dir = config.admin.run_dir
    return ipc_endpoint(status_socket_path(run_dir)), run_dir


def _request(
    context: zmq.Context[Socket], endpoint: str, cmd: str, timeout_s: float, prog: str
) -> object:
    """One REQ round trip bounded by ``timeout_s``; raise _NoDriverError on silence."""
    silent = f"{prog}: no driver answering at {endpoint} (is the driver running?)"
    if endpoint.startswith("ipc://") and not Path(endpoint.removeprefix("ipc://")).exists():
        raise _NoDriverError(silent)
    sock = context.socket(zmq.REQ)
    try:
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDTIMEO, max(1, int(timeout_s * 1000)))
        sock.setsockopt(zmq.RCVTIMEO, max(1, int(timeout_s * 1000)))
        sock.connect(endpoint)
        sock.send(json.dumps({"cmd": cmd}).encode())
        raw = sock.recv()
    except zmq.ZMQError as exc:
        raise _NoDriverError(silent) from exc
    finally:
        sock.close(linger=0)
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise _NoDriverError(f"{prog}: unreadable reply from {endpoint}: {raw[:80]!r}") from exc


def _guarded(prog: str, command: Callable[[], int]) -> int:
    """Run ``command``; a bad configuration is exit 2, no (working) driver one line and exit 1."""
    try:
        return command()
    except ConfigError as exc:
        _line(sys.stderr, f"{prog}: {exc}")
        return EXIT_USAGE
    except _NoDriverError as exc:
        _line(sys.stderr, str(exc))
        return EXIT_NO_DRIVER


def status_main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """``status [--config FILE] [--json] [--timeout S]``: print what the driver holds."""
    prog = "tensorpool status"
    parser = _common_parser(prog, "Show a running driver's streams, leases and counters.")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait (default 3)")
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    stdout = out if out is not None else sys.stdout
    context: zmq.Context[Socket] = zmq.Context()

    def status() -> int:
        endpoint, _ = _locate(args, prog)
        reply = _request(context, endpoint, CMD_STATUS, args.timeout, prog)
        if not isinstance(reply, dict) or reply.get("ok") is not True:
            error = reply.get("error") if isinstance(reply, dict) else reply
            raise _NoDriverError(
                f"{prog}: the driver at {endpoint} answered with an error: {error}"
            )
        body = reply.get("status")
        if args.json:
            _line(stdout, json.dumps(body, indent=2))
        elif isinstance(body, dict):
            _line(stdout, format_status(body))
        return EXIT_OK

    try:
        return _guarded(prog, status)
    finally:
        context.term()


def events_main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """``events [--config FILE] [--json] [--count N] [--timeout S]``: follow driver events.

    Follows until Ctrl-C, until ``--count`` events arrived, or until ``--timeout`` seconds pass
    without an event (exit 1 if ``--count`` was not reached then, else 0).
    """
    prog = "tensorpool events"
    parser = _common_parser(prog, "Follow a running driver's lifecycle events.")
    parser.add_argument("--count", type=int, default=0, help="stop after N events")
    parser.add_argument(
        "--timeout", type=float, default=0.0, help="stop after S seconds without an event"
    )
    parser.add_argument(
        "--events-endpoint", help="events endpoint to use instead of the configured run dir"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    stdout = out if out is not None else sys.stdout
    context: zmq.Context[Socket] = zmq.Context()
    sub = context.socket(zmq.SUB)

    def events() -> int:
        endpoint, run_dir = _locate(args, prog)
        events_endpoint = args.events_endpoint or (
            ipc_endpoint(events_socket_path(run_dir)) if run_dir is not None else None
        )
        if events_endpoint is None:
            parser.error("--endpoint needs --events-endpoint")
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(events_endpoint)
        # The ping proves a driver is there, and gives the subscription time to reach it.
        _request(context, endpoint, CMD_PING, args.timeout or 3.0, prog)
        _line(sys.stderr, f"{prog}: following {events_endpoint} (Ctrl-C to stop)")
        return _follow(sub, args, stdout, prog)

    try:
        return _guarded(prog, events)
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        sub.close(linger=0)
        context.term()


def _follow(sub: Socket, args: argparse.Namespace, stdout: TextIO, prog: str) -> int:
    seen = 0
    last = time.monotonic()
    while args.count <= 0 or seen < args.count:
        if not sub.poll(_FOLLOW_POLL_MS):
            if args.timeout and time.monotonic() - last >= args.timeout:
                if args.count > 0:
                    _line(
                        sys.stderr, f"{prog}: {seen} of {args.count} events in {args.timeout:g} s"
                    )
                    return EXIT_NO_DRIVER
                return EXIT_OK
            continue
        raw = sub.recv()
        last = time.monotonic()
        seen += 1
        if args.json:
            _line(stdout, raw.decode(errors="replace"))
            continue
        try:
            event = json.loads(raw)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            _line(stdout, f"(unreadable event: {raw[:80]!r})")
            continue
        _line(stdout, format_event(event))
    return EXIT_OK
