"""The driver as a process: start order, signals, exit codes, and tear-down in reverse.

Start order: namespace lock -> Aeron media driver (joined or embedded) -> control gateway ->
admin plane -> actor system -> the gateway starts feeding the driver. Every way out (signal,
shutdown request, loss of the media driver) tears down in reverse, so nothing is left
behind: no lock, no embedded media driver directory, no stray threads.

The admin plane is our extra (the reference drivers have none), so it must not stop a
configuration written for them from running: see ``_start_admin``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from messages import ShutdownReason
from messages.admin import events_socket_path, status_socket_path
from messages.events import NullEventSink, ShutdownRequested
from shm.instance_lock import InstanceLock, InstanceLockError
from shm.paths import directory_mode, namespace_dir
from tensorpool_config.model import AdminSection
from tensorpool_config.rundir import default_run_dir

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from actors.admin import AdminPlane
    from actors.gateway.control import ControlGateway
    from actors.gateway.media_driver import MediaDriverHandle
    from actors.system import DriverSystem
    from tensorpool_config import DriverConfig

log = logging.getLogger("tensorpool.launcher")


class ExitCode(IntEnum):
    """The driver process's exit status (``--help`` lists them for users and scripts)."""

    OK = 0
    FAILURE = 1  # cannot start (lock, media driver), or lost the media driver
    CONFIG = 2  # unusable configuration: nothing was created


class _Shutdown(IntEnum):
    """How far shutdown has been asked for; ordered, since a request only ever escalates."""

    NONE = 0
    DRAIN = 1
    SKIP_DRAIN = 2  # a second signal: stop without waiting for leases to drain


GATEWAY_FLUSH_S: Final = 2.0
_WAIT_TURN_S: Final = 0.1
SWITCH_INTERVAL_S: Final = 0.0005
_PROBE_TIMEOUT_S: Final = 1.0


def run_driver(
    config: DriverConfig,
    *,
    aeron_dir: str | None = None,
    stop_event: threading.Event | None = None,
) -> ExitCode:
    """Run the driver until it stops; returns the exit code (see ``--help``).

    ``stop_event`` lets embedding code (and tests) ask for the same shutdown as SIGTERM.
    Signal handlers are installed only when called from the main thread.
    """
    from actors.gateway.media_driver import (  # noqa: PLC0415 - keep `--help` and status light
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
            return ExitCode.FAILURE
        try:
            resolved_dir = resolve_aeron_dir(aeron_dir, config.driver.aeron_dir)
            try:
                media = open_media_driver(resolved_dir)
            except MediaDriverError as exc:
                log.error("%s", exc)  # noqa: TRY400
                return ExitCode.FAILURE
            try:
                return run.with_media(media)
            finally:
                media.close()
        finally:
            lock.release()
    finally:
        run.signals.restore()


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


class _DriverRun:
    """One run of the driver, from the media driver on; each step undoes itself on the way out."""

    def __init__(self, config: DriverConfig, stop_event: threading.Event | None) -> None:
        self.config = config
        self.stop_event = stop_event
        self.signals = _Signals()
        self.lost = threading.Event()
        # Canonical, as provisioning uses it: the lock's no-follow walk refuses symlinks, and
        # a base dir may legitimately be one (e.g. /dev/shm -> /run/shm).
        self.base_dir = Path(os.path.realpath(config.shm.base_dir))
        self.ns_dir = namespace_dir(self.base_dir, config.shm.namespace)

    def with_media(self, media: MediaDriverHandle) -> ExitCode:
        from actors.gateway.control import ControlGateway, GatewayChannels, GatewayError  # noqa: PLC0415

        gateway = ControlGateway(
            media.aeron_dir,
            GatewayChannels.from_config(self.config),
            on_fatal=lambda _reason: self.lost.set(),
        )
        try:
            gateway.start()
        except GatewayError as exc:
            log.error("%s", exc)  # noqa: TRY400
            return ExitCode.FAILURE
        # The gateway thread reads, decides (the DriverActor) and fires the driver's timers, but
        # the lease and stream actors and the admin plane have threads of their own; with
        # several runnable threads, each hand-off can wait out the interpreter's switch interval
        # (5 ms by default), which would dominate an attach round trip or a revoke's lateness.
        previous_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        try:
            return self.with_gateway(media, gateway)
        finally:
            gateway.close(GATEWAY_FLUSH_S)
            gateway.clock.close()  # the driver's timers ran on it; the system has stopped
            sys.setswitchinterval(previous_interval)

    def with_gateway(self, media: MediaDriverHandle, gateway: ControlGateway) -> ExitCode:
        from actors import start_driver_system  # noqa: PLC0415
        from actors.runtime.gc_freezer import GcFreezer  # noqa: PLC0415

        def info() -> Mapping[str, object]:
            return {
                "counters": gateway.counters(),
                "aeron_dir": media.aeron_dir,
                "aeron_embedded": media.embedded,
                "shm_namespace_dir": str(self.ns_dir),
            }

        admin = _start_admin(self.config, info)
        if isinstance(admin, ExitCode):
            return admin
        try:
            events = admin.events if admin is not None else NullEventSink()
            system = start_driver_system(
                self.config,
                outbox=gateway,
                events=events,
                clock=gateway.clock,
                intake=gateway.intake,
                driver_host=gateway.host,
            )
            freezer = GcFreezer()  # no full GC passes over the leases (gc_freezer.py)
            freezer.install()
            try:
                if admin is not None:
                    admin.bind_driver(system.driver)
                gateway.bind(system.driver, backlog=system.backlog)
                log.info("%s", _startup_line(self.config, media, self.ns_dir, admin))
                code = self.wait(system, gateway)
                if code is ExitCode.OK:
                    gateway.close(GATEWAY_FLUSH_S)  # the final ShmDriverShutdown goes out
            finally:
                system.stop()
                freezer.uninstall()
        finally:
            if admin is not None:
                admin.stop()
        if code is ExitCode.OK:
            log.info("driver %s stopped", self.config.driver.instance_id)
        return code

    def wait(self, system: DriverSystem, gateway: ControlGateway) -> ExitCode:
        """Serve until the DriverActor reaches Stopped; turn signals into shutdown requests."""
        requested = _Shutdown.NONE
        while not system.wait_stopped(_WAIT_TURN_S):
            if self.lost.is_set():
                log.critical(
                    "lost the Aeron media driver in %s (%s); exiting",
                    gateway.aeron_dir,
                    gateway.fatal_reason,
                )
                return ExitCode.FAILURE
            if not system.driver.is_alive() and not system.wait_stopped(0):
                log.critical("the DriverActor died without stopping cleanly; exiting")
                return ExitCode.FAILURE
            stop = 1 if self.stop_event is not None and self.stop_event.is_set() else 0
            wanted = _Shutdown(min(_Shutdown.SKIP_DRAIN, self.signals.count + stop))
            if wanted > requested:
                requested = wanted
                skip = requested is _Shutdown.SKIP_DRAIN
                log.info("shutdown requested%s", " (skipping the drain)" if skip else "")
                system.driver.tell(ShutdownRequested(ShutdownReason.NORMAL, skip_drain=skip))
        return ExitCode.OK


def _start_admin(
    config: DriverConfig, info: Callable[[], Mapping[str, object]]
) -> AdminPlane | ExitCode | None:
    """The admin plane; None when off or unavailable; an exit code when its failure is fatal.

    The reference drivers have no admin plane, so a configuration written for them (no
    ``[admin]`` table) must still run the driver: with the admin keys at their defaults a
    failure is a warning. Another driver serving the same run dir (two namespaces, one
    default instance_id) is a warning too: the namespace lock, not the admin plane, decides
    which drivers may run. Other failures of an admin plane the user configured stay fatal.
    """
    if not config.admin.enabled:
        return None
    from actors.admin import AdminConfigError, AdminStartError, start_admin  # noqa: PLC0415

    try:
        return start_admin(config, info)
    except AdminConfigError as exc:
        log.error("admin plane configuration: %s", exc)  # noqa: TRY400 - one clear line
        return ExitCode.CONFIG
    except AdminStartError as exc:
        failure = exc
    run_dir = config.admin.run_dir
    if run_dir is not None and _served_by_another_driver(run_dir):
        log.warning(
            "admin plane not started: another driver already serves %s; this driver runs "
            "without status/events. Give each driver its own driver.instance_id "
            "(DRIVER_INSTANCE_ID) or admin.run_dir (ADMIN_RUN_DIR), or set "
            "admin.enabled = false",
            run_dir,
        )
        return None
    if admin_at_defaults(config):
        log.warning(
            "admin plane not started: %s; this driver runs without status/events. Fix the "
            "cause, set admin.run_dir (ADMIN_RUN_DIR) to a usable directory, or set "
            "admin.enabled = false",
            failure,
        )
        return None
    log.error(
        "cannot start the admin plane configured in [admin]: %s (or set admin.enabled = false)",
        failure,
    )
    return ExitCode.FAILURE


def admin_at_defaults(config: DriverConfig) -> bool:
    """True when every ``[admin]`` setting is its default (absent table, or the example's).

    ``examples/driver.toml`` writes every default out, so "the table is present" would make
    the built-in configuration stricter when copied into a file; the values decide instead.
    """
    default = AdminSection(run_dir=default_run_dir(config.driver.instance_id, os.environ))
    return config.admin == default


def _served_by_another_driver(run_dir: Path) -> bool:
    """Whether a live process accepts connections on the admin sockets in ``run_dir``."""

    for path in (status_socket_path(run_dir), events_socket_path(run_dir)):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(_PROBE_TIMEOUT_S)
            try:
                probe.connect(str(path))
            except OSError:
                continue
            return True
    return False


def _startup_line(
    config: DriverConfig, media: MediaDriverHandle, ns_dir: Path, admin: AdminPlane | None
) -> str:
    d = config.driver
    if admin is not None:
        endpoints = ", ".join(admin.endpoints)
    else:
        endpoints = "not started (see the warning above)" if config.admin.enabled else "disabled"
    return (
        f"driver {d.instance_id} pid {os.getpid()} running: aeron {media.describe()}; "
        f"shm {ns_dir}; control {d.control_channel}:{d.control_stream_id}; "
        f"announce {d.announce_channel}:{d.announce_stream_id}; "
        f"qos {d.qos_channel}:{d.qos_stream_id}; admin {endpoints}"
    )
