"""Writes landings to Kafka and says, per landing, whether Kafka acknowledged it.

The adapters delete (SQS) or acknowledge (Pub/Sub) a message only when :meth:`KafkaSink.write` returned
``None`` for it, i.e. the broker acknowledged the record with acks=all (idempotent producer on real
Kafka, see :func:`app.local_broker.producer_options`). A failed or timed-out write returns the exception
and the message stays at its source, which delivers it again.

Test hook (for the "lossy" fault test only; mocks nothing the real parts can produce): the setting
``CARRYOVER_TEST_FAIL_EVERY_NTH_SEND=N`` makes every Nth staging write fail as if Kafka had refused it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from app import local_broker
from app.dead_letters import DEAD_LETTER_OVERHEAD
from app.ingest.landing import DeadLetter, Landing, unwritable
from app.settings import RECORD_FRAMING_BYTES

log = logging.getLogger(__name__)
UNWRITABLE = (MessageSizeTooLargeError, UnicodeError, TypeError, ValueError)
"""Errors the producer raises for the record itself (not the broker): retrying cannot help."""

SEND_TIMEOUT_SECONDS = 60.0


class SimulatedSendFailure(RuntimeError):
    """A staging write failed on purpose (setting ``CARRYOVER_TEST_FAIL_EVERY_NTH_SEND``)."""


class Sink(Protocol):
    """Where landings go. ``write`` returns one entry per landing: None when durable, else the error."""

    async def write(self, landings: Sequence[Landing]) -> list[BaseException | None]:
        """Write every landing; never raises for a single landing's failure."""
        ...


class KafkaSink:
    """A dedicated aiokafka producer for staging and dead-letter records (batched, acks=all)."""

    def __init__(
        self,
        bootstrap_servers: str,
        staging_topic: str,
        dead_letter_topic: str,
        *,
        local: bool,
        send_timeout: float = SEND_TIMEOUT_SECONDS,
        fail_every_nth: int = 0,
        max_request_size: int = 1_048_576,
    ) -> None:
        self.staging_topic = staging_topic
        self.dead_letter_topic = dead_letter_topic
        self.send_timeout = send_timeout
        self.fail_every_nth = fail_every_nth
        self._staging_writes = 0
        self.max_letter_bytes = max_request_size - DEAD_LETTER_OVERHEAD - RECORD_FRAMING_BYTES
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            linger_ms=5,
            max_batch_size=512 * 1024,
            max_request_size=max_request_size,
            request_timeout_ms=int(send_timeout * 1000) // 2,
            client_id="carryover-ingest",
            **local_broker.producer_options(local),
        )

    async def start(self) -> None:
        """Connect the producer."""
        await self._producer.start()

    async def stop(self) -> None:
        """Flush and close the producer."""
        await self._producer.stop()

    def _simulated_failure(self) -> bool:
        if not self.fail_every_nth:
            return False
        self._staging_writes += 1
        return self._staging_writes % self.fail_every_nth == 0

    async def _send(self, landing: Landing) -> asyncio.Future[object]:
        future: asyncio.Future[object] = await self._producer.send(
            self.dead_letter_topic if isinstance(landing, DeadLetter) else self.staging_topic,
            value=landing.value,
            key=landing.key,
            headers=landing.headers,
        )
        return future

    async def write(self, landings: Sequence[Landing]) -> list[BaseException | None]:
        """Send every landing (staging records to staging, dead letters to the DLQ) and wait for the acks."""
        pending: list[asyncio.Future[object] | BaseException] = []
        for landing in landings:
            is_letter = isinstance(landing, DeadLetter)
            if not is_letter and self._simulated_failure():
                pending.append(
                    SimulatedSendFailure("simulated send failure (CARRYOVER_TEST_FAIL_EVERY_NTH_SEND)")
                )
                continue
            try:
                future = await self._send(landing)
            except UNWRITABLE as exc:
                if isinstance(landing, DeadLetter):
                    pending.append(exc)  # dead letters are bounded (landing.dead_letter): not expected
                    continue
                log.warning("staging record %r cannot be written (%r): dead-lettered", landing.key, exc)
                try:
                    future = await self._send(unwritable(landing, exc, self.max_letter_bytes))
                except Exception as again:  # noqa: BLE001 - reported per landing
                    pending.append(again)
                else:
                    pending.append(future)
            except Exception as exc:  # noqa: BLE001 - reported per landing
                pending.append(exc)
            else:
                pending.append(future)
        futures = [p for p in pending if isinstance(p, asyncio.Future)]
        if futures:
            await asyncio.wait(futures, timeout=self.send_timeout)
        results: list[BaseException | None] = []
        for p in pending:
            if not isinstance(p, asyncio.Future):
                results.append(p)
            elif not p.done():
                results.append(TimeoutError(f"Kafka did not acknowledge within {self.send_timeout:.0f}s"))
            elif p.cancelled():
                results.append(RuntimeError("Kafka send was cancelled"))
            else:
                results.append(p.exception())
        return results
