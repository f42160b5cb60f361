"""Records are never lost after ``send`` returned: a delivery that fails is sent again, and a flush waits.

aiokafka's ``send`` returns a future; the broker's answer comes later. When that future fails (the broker
stayed unreachable past the request timeout, a leader moved too often), nobody awaits it in a Faust agent,
and Faust's commit would then move the source offset past a record that never reached Kafka. carryover's
producer hands every future to :class:`Redelivery`: a failed one is sent again with back-off until Kafka
accepts it, and :meth:`Redelivery.drain` (called by the producer's ``flush``, which Faust awaits before it
commits offsets) returns only when every redelivery succeeded. So no offset is committed past a record
that is not in Kafka. A redelivered record lands after records sent later (ordering per key is then
broken for that record; consumers dedupe by ``ce_id``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Resend = Callable[[], Awaitable[Awaitable[Any]]]
"""Sends the record again: ``await resend()`` gives the new delivery future."""


class Redelivery:
    """Watches delivery futures and sends failed records again until Kafka accepts them."""

    def __init__(self, *, first_delay: float = 0.5, max_delay: float = 30.0) -> None:
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.redelivered = 0
        self.failed_attempts = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._watching: set[asyncio.Future[Any]] = set()

    @property
    def pending(self) -> int:
        """Records being sent again now."""
        return len(self._tasks)

    def watch(self, future: Awaitable[Any], resend: Resend, what: str) -> None:
        """Send the record again through ``resend`` if ``future`` fails (a cancelled one is left alone)."""
        if not isinstance(future, asyncio.Future):
            return
        self._watching.add(future)

        def on_done(done: asyncio.Future[Any]) -> None:
            self._watching.discard(done)
            if done.cancelled() or done.exception() is None:
                return
            task = asyncio.get_running_loop().create_task(self._redeliver(resend, what, done.exception()))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        future.add_done_callback(on_done)

    async def _redeliver(self, resend: Resend, what: str, error: BaseException | None) -> None:
        delay = self.first_delay
        attempt = 1
        while True:
            self.failed_attempts += 1
            log.error(
                "delivery of %s failed (%r); sending it again in %.1fs (attempt %d)",
                what,
                error,
                delay,
                attempt,
            )
            await asyncio.sleep(delay)
            try:
                await (await resend())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep trying: the offset must not move past it
                error, delay, attempt = exc, min(delay * 2, self.max_delay), attempt + 1
                continue
            self.redelivered += 1
            log.warning("delivery of %s succeeded on attempt %d", what, attempt + 1)
            return

    async def drain(self, flush: Callable[[], Awaitable[None]]) -> None:
        """Return when every delivery watched so far is settled and every failed one was sent again and
        acknowledged (records sent meanwhile are the next flush's).

        Each watched future's own callback (registered first) runs before ``gather`` sees it done, so a
        failure found here has its redelivery task before the next round looks.
        """
        await asyncio.gather(*list(self._watching), return_exceptions=True)  # sent before this flush
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
            await flush()
