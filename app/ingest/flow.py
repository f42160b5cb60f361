"""Back-pressure shared by every source of a worker: a cap on messages received but not yet acknowledged."""

from __future__ import annotations

import asyncio
from collections import deque


class InFlightLimiter:
    """Counting limiter: a poller takes up to N slots before it receives and gives back what it did not use.

    ``acquire`` waits until at least one slot is free and grants ``min(wanted, free)``; waiters are woken
    in arrival order, so no source starves while the worker is at its cap.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("max in flight must be at least 1")
        self.capacity = capacity
        self._used = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def in_flight(self) -> int:
        """Slots in use right now."""
        return self._used

    @property
    def free(self) -> int:
        """Slots free right now."""
        return self.capacity - self._used

    @property
    def waiting(self) -> int:
        """Pollers waiting for a slot (the worker is at its cap when this is above 0)."""
        return len(self._waiters)

    async def acquire(self, wanted: int) -> int:
        """Wait for a free slot, then take up to ``wanted`` slots; returns how many were granted."""
        if wanted < 1:
            raise ValueError("wanted must be at least 1")
        while self._used >= self.capacity:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    self._wake()  # pass the wake-up on
                raise
        granted = min(wanted, self.capacity - self._used)
        self._used += granted
        return granted

    def release(self, count: int) -> None:
        """Give back ``count`` slots (messages acknowledged, released or never received)."""
        if count <= 0:
            return
        self._used = max(0, self._used - count)
        self._wake()

    def _wake(self) -> None:
        free = self.capacity - self._used
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1
