"""Normalize agent: legacy.staging.v1 -> decrypt, decode, map -> canonical topics keyed by tenant.

Thin: the work is :class:`app.normalize.normalizer.Normalizer`. concurrency=1 keeps offsets and the dedupe
table in order (faust #606). A source message id seen within the dedupe window at another staging offset is
dropped (a redelivery at the source landed twice, or a `dlq replay` of a record that went through). The
table remembers the staging offset that carried it, so the same staging record read again after a crash
(processed, not yet committed) is processed again, never dropped: its seen-mark may have reached the
changelog before its canonical records reached Kafka. Faust flushes the producer before it commits the
staging offset, so a crash re-processes rather than loses.

Records go straight to Faust's producer rather than through ``Topic.send``, whose attachment and sensor
path cost ~20 % of the agent's throughput (bench/README.md); the flush-before-commit covers them too.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import timedelta
from typing import TYPE_CHECKING

from faust import StreamT

from app.agent_guard import send_until_accepted
from app.normalize.mapping.pipeline import publication_id
from app.normalize.normalizer import REASON_AGENT_ERROR, REASON_SEND_FAILED, is_redelivery
from app.normalize.runtime import NormalizeRuntime

if TYPE_CHECKING:
    from app.faust_app import CarryoverApp

log = logging.getLogger(__name__)


def register(app: CarryoverApp) -> None:
    """Add the normalize agent, its dedupe table and its timers to ``app``."""
    settings, topics = app.carryover, app.streams
    window = timedelta(seconds=settings.dedupe_window_seconds)
    seen = (
        app.Table(
            "normalize-seen-source-ids",
            default=int,
            key_type=str,
            value_type=int,
            partitions=topics.staging.partitions,
            help="source message ids normalized within the dedupe window",
        ).tumbling(window, expires=window * 2)
        if settings.dedupe_window_seconds > 0
        else None
    )

    runtime = NormalizeRuntime(settings)
    app.counters["normalize"] = lambda: asdict(runtime.normalizer.stats) if runtime.normalizer else {}

    @app.agent(topics.staging, concurrency=1, name="agents.normalize.normalize")
    async def normalize(stream: StreamT[bytes]) -> None:
        """Turn each staging record into canonical records (or one dead letter) and send them.

        Every event is handled inside the guard of :mod:`app.agent_guard`: it ends as its records or its
        one dead letter, and the agent never raises past it.
        """
        normalizer = await runtime.ready()
        producer_send = app.producer.send  # Faust flushes its producer before it commits staging offsets

        async def send(topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
            await producer_send(topic, key, value, None, None, headers)

        dead_letter_topic = topics.dead_letters.get_topic_name()
        canonical = {name: topic.get_topic_name() for name, topic in topics.canonical.items()}
        async for event in stream.events():
            message = event.message
            headers = [(k, bytes(v)) for k, v in (message.headers or [])]
            origin = f"{message.topic}/{message.partition}/{message.offset}"
            marker = message.offset + 1  # where this record sits in its staging partition (0 = never seen)
            source_id = ""
            try:
                source_id = publication_id(dict(headers))
                if seen is not None and source_id:
                    previous = seen[source_id].current() or seen[source_id].delta(window)
                    if is_redelivery(previous, marker):
                        normalizer.stats.duplicates += 1
                        continue
                outgoing = normalizer.process(message.key, message.value, headers, origin)
            except Exception as exc:  # noqa: BLE001 - the guard: this event becomes its dead letter
                log.exception("normalize failed on %s; it is dead-lettered (agent_error)", origin)
                outgoing = [
                    normalizer.dead_letter(
                        message.key,
                        message.value,
                        headers,
                        REASON_AGENT_ERROR,
                        f"{type(exc).__name__} in the normalize agent; see the worker log at {origin}",
                        origin,
                    )
                ]
            dead_lettered = False
            for out in outgoing:
                dead_lettered = dead_lettered or out.dead_letter
                topic = dead_letter_topic if out.dead_letter else canonical[out.topic]
                try:
                    await send(topic, out.key, out.value, out.headers)
                except Exception as exc:  # noqa: BLE001 - refused as such: the event becomes its dead letter
                    log.error("the producer refused a record from %s (%r); dead-lettering it", origin, exc)
                    letter = normalizer.dead_letter(
                        message.key,
                        message.value,
                        headers,
                        REASON_SEND_FAILED,
                        f"the producer refused a {out.topic} record: {type(exc).__name__}",
                        origin,
                    )
                    await send_until_accepted(
                        send, dead_letter_topic, letter.key, letter.value, letter.headers, what=origin
                    )
                    dead_lettered = True
                    break
            if seen is not None and source_id and not dead_lettered:
                seen[source_id] = marker  # a dead letter may be replayed after a fix: not remembered

    @app.every(max(1.0, min(10.0, settings.key_cache_ttl / 4)))
    async def refresh_tenant_keys() -> None:
        """Reload tenant keys when half their TTL passed or a lookup missed (a new tenant or key)."""
        if runtime.keyring is not None and await runtime.keyring.ensure_fresh():
            log.info("tenant keys reloaded")

    @app.every(30.0)
    async def log_normalize_progress() -> None:
        """One line every 30 s: what normalize did so far."""
        if runtime.normalizer is not None:
            s = runtime.normalizer.stats
            log.info(
                "normalize: %d staging records -> %d canonical, %d dead-lettered, %d duplicates dropped",
                s.records,
                s.canonical,
                s.dead_lettered,
                s.duplicates,
            )
