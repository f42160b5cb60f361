"""The producer buffer's flush (what Faust awaits right before it commits offsets) returns only when every
``send_soon`` record (every table's changelog write) was handed to the Kafka client.

Faust's own flush returns after one 0.1 s wait without progress, with records still buffered; a kill -9 after
the commit that followed could lose those changelog records (a table restored older than its offsets). The
fault, a hand-off slower than 0.1 s, is injected: the real client cannot be made slow on demand."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace
from typing import Any

from faust.transport.producer import ProducerBuffer

from app.faust_app import CompleteFlushBuffer


class SlowChannel:
    """A channel whose hand-off of each record takes ``delay`` seconds; records what it published."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.published: list[int] = []

    async def publish_message(self, fut: Any, wait: bool = False) -> None:
        await asyncio.sleep(self.delay)
        self.published.append(fut.message.value)


def flushed_after(buffer_type: type[ProducerBuffer], records: int, delay: float) -> list[int]:
    """Buffer ``records`` records on a slow channel, flush, and return what was handed on by then."""

    async def scenario() -> list[int]:
        channel = SlowChannel(delay)
        buffer = buffer_type()
        buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
        await buffer.start()
        try:
            for value in range(records):
                buffer.put(SimpleNamespace(message=SimpleNamespace(channel=channel, value=value)))  # type: ignore[arg-type]
            await buffer.flush()
            return list(channel.published)
        finally:
            with contextlib.suppress(RuntimeError):  # Faust's: stopping with records left refuses to flush
                await buffer.stop()

    return asyncio.run(scenario())


def test_flush_returns_only_when_every_buffered_record_was_handed_on() -> None:
    assert flushed_after(CompleteFlushBuffer, records=4, delay=0.15) == [0, 1, 2, 3]


def test_fausts_own_flush_returns_early_the_fault_this_guards_against() -> None:
    """If Faust fixes its flush, this fails: then CompleteFlushBuffer can go."""
    assert len(flushed_after(ProducerBuffer, records=4, delay=0.15)) < 4
