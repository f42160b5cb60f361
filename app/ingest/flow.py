"""Back-pressure shared by every source of a worker, shared fairly: a cap on messages received but not yet
acknowledged, of which each source may hold at most its fair share while other sources hold some.

The fairness rule (pure: :func:`fair_share`): while ``busy`` sources hold slots or wait for some, one source
may hold at most ``capacity // busy`` (never less than ``floor``, one full receive, and never more than the
capacity). A source alone gets the whole capacity, so a backlog drains at full speed; the moment another
source wants slots, the backlogged one takes no new slots beyond its share, and the newcomer is served from
the next slots the backlog's batches give back — it does not queue behind the backlog. The same holds across
the SQS and Pub/Sub adapters, which share one limiter.
"""

from __future__ import annotations

import asyncio
import collections
from collections import deque

DEFAULT_FLOOR = 10
"""A source may always hold one full SQS receive (10 messages), whatever its share."""


def fair_share(capacity: int, busy: int, floor: int = DEFAULT_FLOOR) -> int:
    """Slots one source may hold while ``busy`` sources (itself included) hold some."""
    return min(capacity, max(floor, capacity // max(1, busy)))


class InFlightLimiter:
    """Counting limiter with per-source shares: a poller takes up to N slots before it receives and gives
    back what it did not use; a source never holds more than its :func:`fair_share`.

    ``acquire`` waits until the source may take at least one slot and grants ``min(wanted, free, room)``;
    waiters are woken in arrival order, so no source starves while the worker is at its cap.
    """

    def __init__(self, capacity: int, *, floor: int = DEFAULT_FLOOR) -> None:
        if capacity < 1:
            raise ValueError("max in flight must be at least 1")
        self.capacity = capacity
        self.floor = max(1, floor)
        self._used = 0
        self._held: dict[str, int] = {}
        self._wanting: collections.Counter[str] = collections.Counter()
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
        """Pollers waiting for a slot (the worker is at its cap, or a source at its share, when above 0)."""
        return len(self._waiters)

    @property
    def busy(self) -> int:
        """Sources holding slots or waiting for some right now."""
        return len(self._held.keys() | self._wanting.keys())

    def held(self, holder: str) -> int:
        """Slots ``holder`` holds."""
        return self._held.get(holder, 0)

    def share(self, holder: str) -> int:
        """The most slots ``holder`` may hold now (its fair share, counting itself as busy)."""
        busy = len(self._held.keys() | self._wanting.keys() | {holder})
        return fair_share(self.capacity, busy, self.floor)

    def grantable(self, holder: str, wanted: int) -> int:
        """Slots ``holder`` would be granted now (0: it must wait)."""
        room = self.share(holder) - self.held(holder)
        return max(0, min(wanted, self.free, room))

    async def acquire(self, wanted: int, holder: str = "") -> int:
        """Wait until ``holder`` may take a slot, then take up to ``wanted``; how many were granted."""
        if wanted < 1:
            raise ValueError("wanted must be at least 1")
        while (granted := self.grantable(holder, wanted)) == 0:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            self._wanting[holder] += 1
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                raise
            finally:
                self._wanting[holder] -= 1
                if self._wanting[holder] <= 0:
                    del self._wanting[holder]
        self._used += granted
        self._held[holder] = self.held(holder) + granted
        return granted

    def release(self, count: int, holder: str = "") -> None:
        """Give back ``count`` slots of ``holder`` (messages acknowledged, released or never received)."""
        if count <= 0:
            return
        self._used = max(0, self._used - count)
        left = self.held(holder) - count
        if left > 0:
            self._held[holder] = left
        else:
            self._held.pop(holder, None)
        self._wake()

    def _wake(self) -> None:
        """Wake every waiter, in arrival order; each checks its own grant again (shares change with
        ``busy``, so a waiter at its share may be allowed again although no slot of its own came back)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
