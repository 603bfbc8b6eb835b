"""``tensorpool-driver`` (and ``python launcher.py``): the command line in front of the driver.

Lives in a package so the installed console script and ``python launcher.py`` run the same
code: a top-level module shipped by the wheel would be copied into site-packages by an
editable install and go stale there. Parses arguments, hands ``status``/``events``/``keygen``
to the admin client, and runs the driver with ``tensorpool_launcher.process.run_driver``.
The admin subcommands never import the driver (pykka, numpy, the actor tree): only ``run``
does, inside ``run_driver``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tensorpool_config import ConfigError, load_config
from tensorpool_launcher.process import ExitCode, run_driver

if TYPE_CHECKING:
    from collections.abc import Sequence

_DESCRIPTION = """\
Shared-Memory Tensor Pool driver: owns the SHM tensor pools of this host and hands them to
producer and consumer processes under leases, over an Aeron control stream (SBE schemas 900
and 901, byte-compatible with the C and Julia drivers and clients).

commands:
  run      (default) run the driver in the foreground
  status   ask a running driver what it holds (tensorpool-driver status --help)
  events   follow a running driver's lifecycle events (tensorpool-driver events --help)
  keygen   make a CURVE key pair for the TCP status endpoint (tensorpool-driver keygen --help)
  bridge   run the Aeron-UDP bridge, or ask it for status (tensorpool-driver bridge --help)
"""

_EPILOG = """\
configuration:
  Without --config the built-in configuration is used: control aeron:ipc?term-length=4m
  stream 1000, announces on stream 1001, QoS stream 1200, static stream 10000, dynamic
  streams 20000-29999, SHM under /dev/shm/tensorpool-<user>/default. The TOML file has the
  same tables and keys as the C and Julia drivers ([driver], [shm], [policies],
  [profiles.<name>], [streams.<name>]; [supervisor] is accepted and ignored), so an existing
  config works unchanged; [admin] configures the status/events plane.

environment overrides:
  Every scalar key of [driver], [shm], [policies] and [admin] can be overridden by its
  dotted name upper-cased with '.' -> '_' (driver.control_stream_id ->
  DRIVER_CONTROL_STREAM_ID; booleans: 'true' in any case is true, anything else false).
  Aliases, used only when the DRIVER_* variable is unset: AERON_DIR -> DRIVER_AERON_DIR,
  TP_CONTROL_CHANNEL -> DRIVER_CONTROL_CHANNEL, TP_CONTROL_STREAM_ID ->
  DRIVER_CONTROL_STREAM_ID.

Aeron directory:
  --aeron-dir, else driver.aeron_dir (after the environment), else Aeron's default
  directory, so clients with default settings find the driver. If a live media driver
  runs there the driver joins it; otherwise it starts an embedded media driver in that
  directory (replacing the stale directory of a dead one, never touching a live one) and
  removes it at exit.

one driver per namespace:
  The driver holds an exclusive lock on <shm.base_dir>/tensorpool-<user>/<namespace>/
  driver.lock; a second driver on the same namespace exits 1 naming the first one's pid.

admin plane (status/events):
  Served in admin.run_dir (default $XDG_RUNTIME_DIR/tensorpool-<user>/<driver.instance_id>).
  If it cannot start, the driver logs a WARNING and runs without it when the [admin] keys
  are all at their defaults or another driver already serves that run dir (give each
  driver its own driver.instance_id or admin.run_dir); otherwise it exits 1.

stopping:
  SIGINT/SIGTERM drain for policies.shutdown_timeout_ms (a second signal skips the drain),
  then ShmDriverShutdown is published and the driver exits 0. A ShmDriverShutdownRequest
  carrying policies.shutdown_token does the same.

exit codes:
  0  clean shutdown
  1  could not start (namespace locked, media driver unusable) or lost the media driver
  2  bad configuration (one line names the key and the problem; nothing is created)
"""

_ADMIN_COMMANDS = frozenset({"status", "events", "keygen"})


def build_parser() -> argparse.ArgumentParser:
    """The ``run`` options (also the top-level help)."""
    parser = argparse.ArgumentParser(
        prog="tensorpool-driver",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", nargs="?", choices=["run"], default="run", help="run")
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help="TOML configuration (default: built-in)"
    )
    parser.add_argument(
        "--aeron-dir",
        metavar="DIR",
        help="Aeron media driver directory (default: driver.aeron_dir, else Aeron's default)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        help="logging threshold (default: INFO)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the process exit code."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in and args_in[0] == "bridge":
        from tensorpool_bridge.cli import main as bridge_main  # noqa: PLC0415 - bridge only

        return bridge_main(args_in[1:])
    if args_in and args_in[0] in _ADMIN_COMMANDS:
        from tensorpool_client import admin_cli  # noqa: PLC0415 - only these subcommands need zmq clients

        command = {
            "status": admin_cli.status_main,
            "events": admin_cli.events_main,
            "keygen": admin_cli.keygen_main,
        }[args_in[0]]
        return command(args_in[1:])
    args = build_parser().parse_args(args_in)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        sys.stderr.write(f"tensorpool-driver: configuration error: {exc}\n")
        return ExitCode.CONFIG
    return run_driver(config, aeron_dir=args.aeron_dir)
