"""``python launcher.py bridge``: run a bridge, or ask a running one for status or events.

    python launcher.py bridge [run] --config bridge.toml [--driver-config driver.toml]
    python launcher.py bridge status --config bridge.toml [--json]
    python launcher.py bridge events --config bridge.toml

``status`` and ``events`` find the running bridge through its run dir (``bridge.run_dir``,
default ``$XDG_RUNTIME_DIR/tensorpool-<user>/<bridge.instance_id>``), so they take the same
configuration file. Exit codes: 0 clean stop, 1 runtime failure or no answer, 2 bad config.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import zmq

from tensorpool_bridge.bridge import Bridge
from tensorpool_bridge.config import BridgeConfig, load_bridge_config
from tensorpool_bridge.status import events_endpoint, status_endpoint
from tensorpool_config import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

EXIT_OK: Final = 0
EXIT_RUNTIME: Final = 1
EXIT_CONFIG: Final = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="launcher.py bridge",
        description="Aeron-UDP bridge of tensorpool streams between hosts (bridge.md).",
    )
    parser.add_argument("command", nargs="?", choices=["run", "status", "events"],
                        default="run")
    parser.add_argument("--config", type=Path, required=True, metavar="FILE",
                        help="bridge TOML ([bridge] and [[mappings]])")
    parser.add_argument("--driver-config", type=Path, metavar="FILE",
                        help="the local driver's TOML (its Aeron dir, channels, base dirs)")
    parser.add_argument("--json", action="store_true", help="status: print the raw JSON")
    parser.add_argument("--timeout", type=float, default=5.0, help="status: seconds to wait")
    parser.add_argument("--log-level", default="INFO", type=str.upper,
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_bridge_config(args.config, driver_config=args.driver_config)
    except ConfigError as exc:
        sys.stderr.write(f"bridge: configuration error: {exc}\n")
        return EXIT_CONFIG
    if args.command == "status":
        return _status(cfg, as_json=args.json, timeout=args.timeout)
    if args.command == "events":
        return _events(cfg)
    return run(cfg)


def run(cfg: BridgeConfig) -> int:
    """Run until SIGINT/SIGTERM (exit 0) or until the bridge fails (exit 1)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        bridge = Bridge(cfg).start()
    except Exception as exc:
        sys.stderr.write(f"bridge: cannot start: {exc}\n")
        return EXIT_RUNTIME
    try:
        while not stop.wait(0.2):
            if not bridge.healthy:
                why = bridge.failure or "network thread stopped"
                sys.stderr.write(f"bridge: stopping after a failure: {why}\n")
                return EXIT_RUNTIME
        return EXIT_OK
    finally:
        bridge.stop()


def _ask(cfg: BridgeConfig, timeout: float) -> dict[str, Any] | None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(status_endpoint(cfg.run_dir))
        sock.send(b"status")
        if not sock.poll(int(timeout * 1000)):
            return None
        answer: dict[str, Any] = json.loads(sock.recv())
        return answer
    finally:
        sock.close()
        ctx.term()


def _status(cfg: BridgeConfig, *, as_json: bool, timeout: float) -> int:
    answer = _ask(cfg, timeout)
    if answer is None:
        sys.stderr.write(f"bridge: no answer from {status_endpoint(cfg.run_dir)}\n")
        return EXIT_RUNTIME
    if as_json:
        sys.stdout.write(json.dumps(answer, indent=2, sort_keys=True) + "\n")
        return EXIT_OK
    sys.stdout.write(f"bridge {answer.get('instance_id')} (role {answer.get('role')})\n")
    for m in answer.get("mappings", []):
        c = m.get("counters", {})
        moved = (c.get("frames_forwarded", 0), c.get("bytes_forwarded", 0)) \
            if m["role"] == "sender" else (c.get("frames_rematerialized", 0),
                                           c.get("bytes_rematerialized", 0))
        drops = {k: v for k, v in c.items() if v and any(
            k.startswith(p) for p in ("chunks_dropped", "frames_dropped", "frames_skipped",
                                      "assemblies_", "frames_abandoned"))}
        sys.stdout.write(
            f"  {m['role']:8} {m.get('source_stream_id')} -> {m['dest_stream_id']}: "
            f"{m['state']}, source epoch {m.get('source_epoch')}, local epoch "
            f"{m.get('local_epoch')}, frames {moved[0]}, bytes {moved[1]}, drops {drops}\n")
    return EXIT_OK


def _events(cfg: BridgeConfig) -> int:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(events_endpoint(cfg.run_dir))
    try:
        while True:
            sys.stdout.write(sock.recv_string() + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        sock.close(0)
        ctx.term()
