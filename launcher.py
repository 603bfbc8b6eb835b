"""``tensorpool-driver``: configuration and environment in, a running driver out.

Start order: configuration -> namespace lock -> Aeron media driver (joined or embedded) ->
control gateway -> admin plane -> actor system -> the gateway starts feeding the driver.
Every way out (signal, shutdown request, loss of the media driver) tears down in reverse,
so nothing is left behind: no lock, no embedded media driver directory, no stray threads.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from config import ConfigError, DriverConfig, load_config

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from actors.admin import AdminPlane
    from actors.gateway import ControlGateway
    from actors.media_driver import MediaDriverHandle
    from actors.system import DriverSystem

log = logging.getLogger("tensorpool.launcher")

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1  # cannot start (lock, media driver), or lost the media driver
EXIT_CONFIG: Final = 2  # unusable configuration: nothing was created
GATEWAY_FLUSH_S: Final = 2.0
_WAIT_TURN_S: Final = 0.1

_DESCRIPTION = """\
Shared-Memory Tensor Pool driver: owns the SHM tensor pools of this host and hands them to
producer and consumer processes under leases, over an Aeron control stream (SBE schemas 900
and 901, byte-compatible with the C and Julia drivers and clients).

commands:
  run      (default) run the driver in the foreground
  status   ask a running driver what it holds (tensorpool-driver status --help)
  events   follow a running driver's lifecycle events (tensorpool-driver events --help)
  keygen   make a CURVE key pair for the TCP status endpoint (tensorpool-driver keygen --help)
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
  Every scalar key can be overridden by its dotted name upper-cased with '.' -> '_'
  (driver.control_stream_id -> DRIVER_CONTROL_STREAM_ID; booleans: true/false).
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

stopping:
  SIGINT/SIGTERM drain for policies.shutdown_timeout_ms (a second signal skips the drain),
  then ShmDriverShutdown is published and the driver exits 0. A ShmDriverShutdownRequest
  carrying policies.shutdown_token does the same.

exit codes:
  0  clean shutdown
  1  could not start (namespace locked, media driver unusable) or lost the media driver
  2  bad configuration (one line names the key and the problem; nothing is created)
"""


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
    if args_in and args_in[0] in {"status", "events", "keygen"}:
        from client import admin_cli  # noqa: PLC0415 - only these subcommands need zmq clients

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
        return EXIT_CONFIG
    return run_driver(config, aeron_dir=args.aeron_dir)


class _Signals:
    """SIGINT/SIGTERM counter: the handler only counts, the wait loop acts."""

    def __init__(self) -> None:
        self.count = 0
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # embedded in a program that owns its signals
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, _signum: int, _frame: object) -> None:
        self.count += 1

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def run_driver(
    config: DriverConfig,
    *,
    aeron_dir: str | None = None,
    stop_event: threading.Event | None = None,
) -> int:
    """Run the driver until it stops; returns the exit code (see ``--help``).

    ``stop_event`` lets embedding code (and tests) ask for the same shutdown as SIGTERM.
    Signal handlers are installed only when called from the main thread.
    """
    from actors.instance_lock import (  # noqa: PLC0415 - keep `--help` and status light
        InstanceLock,
        InstanceLockError,
        directory_mode,
    )
    from actors.media_driver import (  # noqa: PLC0415
        MediaDriverError,
        open_media_driver,
        resolve_aeron_dir,
    )

    run = _DriverRun(config, stop_event)
    run.signals.install()
    try:
        lock = InstanceLock(
            run.ns_dir, directory_mode(config.shm.permissions_mode), owned_below=run.base_dir
        )
        try:
            lock.acquire()
        except InstanceLockError as exc:
            log.error("%s", exc)  # noqa: TRY400 - one clear line, no traceback
            return EXIT_FAILURE
        try:
            resolved_dir = resolve_aeron_dir(aeron_dir, config.driver.aeron_dir)
            try:
                media = open_media_driver(resolved_dir)
            except MediaDriverError as exc:
                log.error("%s", exc)  # noqa: TRY400
                return EXIT_FAILURE
            try:
                return run.with_media(media)
            finally:
                media.close()
        finally:
            lock.release()
    finally:
        run.signals.restore()


class _DriverRun:
    """One run of the driver, from the media driver on; each step undoes itself on the way out."""

    def __init__(self, config: DriverConfig, stop_event: threading.Event | None) -> None:
        from actors.instance_lock import namespace_dir  # noqa: PLC0415

        self.config = config
        self.stop_event = stop_event
        self.signals = _Signals()
        self.lost = threading.Event()
        # Canonical, as provisioning uses it: the lock's no-follow walk refuses symlinks, and
        # a base dir may legitimately be one (e.g. /dev/shm -> /run/shm).
        self.base_dir = Path(os.path.realpath(config.shm.base_dir))
        self.ns_dir = namespace_dir(self.base_dir, config.shm.namespace)

    def with_media(self, media: MediaDriverHandle) -> int:
        from actors.gateway import ControlGateway, GatewayChannels, GatewayError  # noqa: PLC0415

        gateway = ControlGateway(
            media.aeron_dir,
            GatewayChannels.from_config(self.config),
            on_fatal=lambda _reason: self.lost.set(),
        )
        try:
            gateway.start()
        except GatewayError as exc:
            log.error("%s", exc)  # noqa: TRY400
            return EXIT_FAILURE
        try:
            return self.with_gateway(media, gateway)
        finally:
            gateway.close(GATEWAY_FLUSH_S)

    def with_gateway(self, media: MediaDriverHandle, gateway: ControlGateway) -> int:
        from actors import start_driver_system  # noqa: PLC0415
        from messages.events import NullEventSink  # noqa: PLC0415

        def info() -> Mapping[str, object]:
            return {
                "counters": gateway.counters(),
                "aeron_dir": media.aeron_dir,
                "aeron_embedded": media.embedded,
                "shm_namespace_dir": str(self.ns_dir),
            }

        admin = _start_admin(self.config, info)
        if isinstance(admin, int):
            return admin
        try:
            events = admin.events if admin is not None else NullEventSink()
            system = start_driver_system(self.config, outbox=gateway, events=events)
            try:
                if admin is not None:
                    admin.bind_driver(system.driver)
                gateway.bind(system.driver, backlog=system.backlog)
                log.info("%s", _startup_line(self.config, media, self.ns_dir, admin))
                code = self.wait(system, gateway)
                if code == EXIT_OK:
                    gateway.close(GATEWAY_FLUSH_S)  # the final ShmDriverShutdown goes out
            finally:
                system.stop()
        finally:
            if admin is not None:
                admin.stop()
        if code == EXIT_OK:
            log.info("driver %s stopped", self.config.driver.instance_id)
        return code

    def wait(self, system: DriverSystem, gateway: ControlGateway) -> int:
        """Serve until the DriverActor reaches Stopped; turn signals into shutdown requests."""
        from messages import ShutdownReason  # noqa: PLC0415
        from messages.events import ShutdownRequested  # noqa: PLC0415

        requested = 0  # 0: none, 1: drain, 2: skip the drain
        while not system.wait_stopped(_WAIT_TURN_S):
            if self.lost.is_set():
                log.critical(
                    "lost the Aeron media driver in %s (%s); exiting",
                    gateway.aeron_dir,
                    gateway.fatal_reason,
                )
                return EXIT_FAILURE
            if not system.driver.is_alive() and not system.wait_stopped(0):
                log.critical("the DriverActor died without stopping cleanly; exiting")
                return EXIT_FAILURE
            stop = 1 if self.stop_event is not None and self.stop_event.is_set() else 0
            wanted = min(2, self.signals.count + stop)
            if wanted > requested:
                requested = wanted
                skip = requested >= 2
                log.info("shutdown requested%s", " (skipping the drain)" if skip else "")
                system.driver.tell(ShutdownRequested(ShutdownReason.NORMAL, skip_drain=skip))
        return EXIT_OK


def _start_admin(
    config: DriverConfig, info: Callable[[], Mapping[str, object]]
) -> AdminPlane | int | None:
    """The admin plane, None when disabled, or an exit code when it cannot start."""
    if not config.admin.enabled:
        return None
    from actors.admin import AdminConfigError, AdminStartError, start_admin  # noqa: PLC0415

    try:
        return start_admin(config, info)
    except AdminConfigError as exc:
        log.error("admin plane configuration: %s", exc)  # noqa: TRY400
        return EXIT_CONFIG
    except AdminStartError as exc:
        log.error("cannot start the admin plane: %s", exc)  # noqa: TRY400
        return EXIT_FAILURE


def _startup_line(
    config: DriverConfig, media: MediaDriverHandle, ns_dir: Path, admin: AdminPlane | None
) -> str:
    d = config.driver
    endpoints = ", ".join(admin.endpoints) if admin is not None else "disabled"
    return (
        f"driver {d.instance_id} pid {os.getpid()} running: aeron {media.describe()}; "
        f"shm {ns_dir}; control {d.control_channel}:{d.control_stream_id}; "
        f"announce {d.announce_channel}:{d.announce_stream_id}; "
        f"qos {d.qos_channel}:{d.qos_stream_id}; admin {endpoints}"
    )


if __name__ == "__main__":
    sys.exit(main())
