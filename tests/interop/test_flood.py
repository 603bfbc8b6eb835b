"""A flood of valid attaches must not cost another client its lease (regression of 41b8d3d).

One real driver (the interop configuration: keepalive interval 200 ms, grace 3, so a lease
lives 600 ms past its last keepalive), one victim process that attaches as consumer and sends
a keepalive every interval, and flooder processes that offer valid consumer attaches with
unique client ids as fast as Aeron accepts them. The flood fills the driver's mailbox, so the
gateway falls behind on the control log; the victim's keepalives then sit unread in Aeron while
the lease sweep runs on wall time. Before the fix the sweep expired the victim; now leases
expire only up to the point the gateway has read (``IntakeCaughtUp``).

The verdict needs no timing: the victim sees no revoke naming it on the control stream, its
detach (queued behind whatever the flood left unread, so it is answered only after the driver
has caught up) is answered OK, and the driver still answers ``status``.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

import pytest

from .conftest import CHANNEL, CONTROL_STREAM, KEEPALIVE_MS, REPO, child_env, run_status

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import DriverProc

pytestmark = pytest.mark.slow

# One flooder reproduced the bug in 10 of 11 runs on the old code (3-5 s floods); two sharing
# the 2 cores with the driver only in 4 of 8: each floods slower and the backlog stays shorter.
FLOODERS = 1
FLOOD_S = 4.0  # 3 s floods reproduced the bug in 4 of 6 old-code runs, 4-5 s in 7 of 8
VICTIM_CLIENT_ID = 910
FLOOD_CLIENT_IDS = 1_000_000  # flooder k uses ids from (k + 1) * FLOOD_CLIENT_IDS upwards
STARTUP_TIMEOUT_S = 30.0
REPORT_TIMEOUT_S = 60.0
STATUS_ATTEMPTS = 10  # each waits 2 s for the admin plane


class Child:
    """A ``flood_client`` process: JSON lines from its stdout, stopped by closing its stdin."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.interop.flood_client", *args],
            cwd=REPO,
            env=child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def report(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no report from {self.proc.args!r} in {timeout} s") from None
        if line is None:
            raise AssertionError(f"{self.proc.args!r} exited ({self.proc.poll()}) without a report")
        body = json.loads(line)
        assert isinstance(body, dict)
        return body

    def finish(self) -> None:
        """Close stdin: the child's stop signal."""
        assert self.proc.stdin is not None
        if not self.proc.stdin.closed:
            self.proc.stdin.close()

    def stop(self) -> None:
        self.finish()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def status_json(config: Path) -> dict[str, Any]:
    """The driver's ``status --json``; retried while it answers "did not answer" (busy)."""
    for _ in range(STATUS_ATTEMPTS):
        result = run_status(config)
        if result.returncode == 0 or "did not answer" not in result.stderr:
            break
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert isinstance(body, dict)
    return body




def test_attach_flood_does_not_expire_a_kept_alive_lease(driver: DriverProc) -> None:
    children: list[Child] = []
    try:
        victim = Child(
            "victim",
            driver.aeron_dir,
            CHANNEL,
            str(CONTROL_STREAM),
            str(VICTIM_CLIENT_ID),
            str(KEEPALIVE_MS),
        )
        children.append(victim)
        victim.report(STARTUP_TIMEOUT_S)  # attached: the lease exists
        flooders = [
            Child(
                "flood",
                driver.aeron_dir,
                CHANNEL,
                str(CONTROL_STREAM),
                str((k + 1) * FLOOD_CLIENT_IDS),
                str(FLOOD_S),
            )
            for k in range(FLOODERS)
        ]
        children.extend(flooders)
        floods = [f.report(STARTUP_TIMEOUT_S + FLOOD_S) for f in flooders]
        # The victim keeps alive until the driver has worked off the flood (its status
        # request queues behind it): expiry during that backlog is the bug.
        status_json(driver.config_path)
        victim.finish()
        verdict = victim.report(REPORT_TIMEOUT_S)
        for child in children:
            child.stop()

        assert driver.proc is not None
        assert driver.proc.poll() is None, driver.lines
        counters = status_json(driver.config_path)["counters"]
        context = f"victim {verdict}; floods {floods}; counters {counters}"
        print(context)  # noqa: T201 - shown with -s
        assert verdict["events"] == [], context
        # The driver ended the lease by the victim's detach: an expired lease is no longer
        # there to detach (rejected). The answer itself can be lost to back pressure on the
        # control publication (a drop the driver counts), so the counters decide.
        assert counters.get("detach.ok") == 1, context
        assert not [k for k in counters if k.startswith("detach.rejected")], context
        lost = counters.get("gateway.publish_failed.ShmDetachResponse.BACK_PRESSURED", 0)
        assert verdict["detach"] == ("timeout" if lost else "OK"), context
        # The flood reached the driver: every attach offered was read. Else this proves nothing.
        sent = sum(f["sent"] for f in floods)
        assert counters.get("gateway.received.ShmAttachRequest", 0) == sent + 1, context
    finally:
        for child in children:
            child.stop()
