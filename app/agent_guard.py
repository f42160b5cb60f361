"""How an agent never moves past a record it did not account for.

Faust acknowledges an event when the agent asks for the next one, and when an agent body raises, Faust
restarts the agent and the event it was handling counts as done: its offset is committed, its output is
never written. So every agent body handles each event inside a guard:

* any exception while turning the event into records becomes the event's one dead letter (reason
  ``agent_error``, the exception type in ``dlq_error``; the traceback goes to the log);
* a record the producer refuses as such (too large, bad header) turns the event into its dead letter
  (reason ``send_failed``) — the guard never drops a record;
* a dead letter the producer refuses is retried with back-off, forever, with an error in the log every
  time: the agent stops at that record rather than skip it.

Delivery failures that happen after ``send`` returned are :mod:`app.delivery`'s: they are sent again
before Faust's next commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Send = Callable[[str, bytes | None, bytes, list[tuple[str, bytes]]], Awaitable[Any]]
"""Hands one record (topic, key, value, headers) to the producer; raises when the producer refuses it."""


async def send_until_accepted(
    send: Send,
    topic: str,
    key: bytes | None,
    value: bytes,
    headers: list[tuple[str, bytes]],
    *,
    what: str,
    first_delay: float = 1.0,
    max_delay: float = 30.0,
) -> None:
    """Hand one record to the producer, retrying with back-off until it takes it; never gives up."""
    delay = first_delay
    while True:
        try:
            await send(topic, key, value, headers)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the agent must not move past this record
            log.error(
                "the producer refused %s (%r); the agent waits %.0fs and tries again (it never skips it)",
                what,
                exc,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
