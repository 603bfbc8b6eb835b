"""The gateway's clock: timers fire on its poll thread, at their deadline, even while it parks."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from actors.gateway.control import ControlGateway


def test_timers_fire_on_the_poll_thread_after_their_deadline_while_it_parks_long(
    make_gateway: Callable[..., ControlGateway],
) -> None:
    # Parks of up to 10 s: only the clock's deadline (or the wake-up of a sooner one) can end
    # the park in time for the test's 5 s wait.
    gw = make_gateway(max_park_ns=10_000_000_000)
    done = threading.Event()
    seen: list[tuple[str, int, int]] = []

    def fire(deadline: int) -> None:
        seen.append((threading.current_thread().name, deadline, gw.clock.now_ns()))
        if len(seen) == 2:
            done.set()

    now = gw.clock.now_ns()
    gw.clock.call_at(now + 200_000_000, lambda: fire(now + 200_000_000))
    gw.clock.call_at(now + 20_000_000, lambda: fire(now + 20_000_000))  # sooner: wakes it
    assert done.wait(5.0)
    assert [name for name, _, _ in seen] == ["control-gateway", "control-gateway"]
    assert [deadline for _, deadline, _ in seen] == [now + 20_000_000, now + 200_000_000]
    assert all(fired >= deadline for _, deadline, fired in seen)


def test_after_close_the_clock_still_fires_on_a_thread_of_its_own(
    make_gateway: Callable[..., ControlGateway],
) -> None:
    gw = make_gateway()
    gw.close(flush_timeout=0.5)
    done = threading.Event()
    names: list[str] = []

    def fire() -> None:
        names.append(threading.current_thread().name)
        done.set()

    gw.clock.call_at(gw.clock.now_ns(), fire)
    assert done.wait(5.0)
    assert names == ["gateway-clock"]
    gw.clock.close()
