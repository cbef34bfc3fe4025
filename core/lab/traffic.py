"""The lab's call traffic: one call per interval between the OSBiz's desk phone and the Unify
Phone users, alternating directions, from the moment the trunk is up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from core.lab import artifacts
from core.lab.connector import Connector
from core.lab.pbx import Pbx
from core.lab.sipconn import SipConnection

DESK_PHONE = "200"  # the PBX-side party of every call (a desk phone of the OSBiz)


async def sleep_until(stop: asyncio.Event, when: float) -> bool:
    """Sleep until the loop's clock reads ``when`` or ``stop`` is set; False once stopped."""
    delay = when - asyncio.get_running_loop().time()
    if delay > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
    return not stop.is_set()


class CallSchedule:
    """While a fault is active the connector's clients call first (the faults that make the PBX
    reject calls show on the first call after registration, however short the run), and in
    trunk-lines-busy each call is a burst of two calls more than the lines: the PBX counts the
    calls it holds, so the last two of a burst are rejected whatever the timing.
    """

    def __init__(self, *, calls_per_minute: float, call_seconds: float, busy_burst: bool, pbx: Pbx,
                 connector: Connector | None, site: Callable[[], dict[str, Any]],
                 directory: Callable[[], dict[str, str]], fault_active: Callable[[], bool],
                 stop: asyncio.Event) -> None:
        self.interval = 60.0 / calls_per_minute
        self.call_seconds, self.busy_burst = call_seconds, busy_burst
        self.pbx, self.connector, self.site, self.directory = pbx, connector, site, directory
        self.fault_active, self.stop = fault_active, stop
        self.tasks: set[asyncio.Task[int]] = set()
        self.errors = 0  # calls that failed outright, e.g. the RTP port range exhausted

    async def run(self) -> None:
        n = pbx_i = conn_i = 0
        desk = artifacts.local_number(self.site(), DESK_PHONE)
        await self._until_trunk_up(self.interval)
        while not self.stop.is_set():
            trunk = self.connector.trunk() if self.connector is not None else None
            faulted = self.fault_active()
            if self.busy_burst and faulted and trunk is not None:
                numbers = sorted(self.directory())
                lines = int(self.site()["connectivity"]["simultaneous_calls"])
                for k in range(lines + 2):
                    self._spawn(self._connector_call(trunk, numbers[k % len(numbers)], desk, 3.0))
            elif (n % 2 == 0) != faulted or trunk is None:
                targets = self.pbx.callable_users()
                if targets and self.pbx.conn is not None:
                    self._spawn(self.pbx.calls.place_call(
                        self.pbx.conn, desk, targets[pbx_i % len(targets)], self.call_seconds, self.stop))
                    pbx_i += 1
            else:
                numbers = list(self.directory())  # in the site's user order
                # While a fault is active every other call comes from user 100 (the user the
                # user-scoped faults affect), so even a short window shows the rejection.
                caller = numbers[0] if faulted and conn_i % 2 == 0 else numbers[conn_i % len(numbers)]
                self._spawn(self._connector_call(trunk, caller, desk, self.call_seconds))
                conn_i += 1
            n += 1
            await sleep_until(self.stop, asyncio.get_running_loop().time() + self.interval)

    async def drain(self) -> None:
        """Let the calls in progress end (BYE), then cancel what is left."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=6.0)
        for task in list(self.tasks):
            task.cancel()

    async def _until_trunk_up(self, limit: float) -> None:
        """Wait (at most ``limit`` seconds) until the PBX is registered and the connector has its trunk."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline and not self.stop.is_set():
            registered = self.pbx.stats.registered and self.pbx.conn is not None
            if registered and (self.connector is None or self.connector.trunk() is not None):
                return
            await sleep_until(self.stop, min(deadline, loop.time() + 0.05))

    async def _connector_call(self, trunk: SipConnection, caller: str, callee: str, hold: float) -> int:
        assert self.connector is not None
        return await self.connector.calls.place_call(trunk, caller, callee, hold, self.stop)

    def _spawn(self, coro: Coroutine[Any, Any, int]) -> None:
        task: asyncio.Task[int] = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[int]) -> None:
        self.tasks.discard(task)
        # e.g. the RTP port range is exhausted at a very high call rate: count it, keep running
        if not task.cancelled() and task.exception() is not None:
            self.errors += 1
