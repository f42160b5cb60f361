"""Normalize agent: legacy.staging.v1 -> decrypt, decode, map -> canonical topics keyed by tenant.

Thin: the work is :class:`app.normalizer.Normalizer`.  concurrency=1 keeps offsets and the dedupe table in
order (faust #606).  A source message id seen within the dedupe window at another staging offset is
dropped (a redelivery at the source landed twice, or a `dlq replay` of a record that went through).
The table remembers the staging offset that carried it, so the same staging record read again after
a crash (processed, not yet committed) is processed again, never dropped: its seen-mark may have
reached the changelog before its canonical records reached Kafka. Faust flushes the producer before
it commits the staging offset, so a crash re-processes rather than loses.

Records go straight to Faust's producer rather than through ``Topic.send``, whose attachment and sensor
path cost ~20 % of the agent's throughput (bench/README.md); the flush-before-commit covers them too.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from faust import StreamT

from app import app, settings, topics
from app.crypto.keyring import Keyring
from app.mapping.pipeline import publication_id
from app.normalizer import Normalizer, is_redelivery
from app.runtime import build_normalizer

log = logging.getLogger(__name__)

if settings.has_role("normalize"):
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

    normalizer_holder: list[Normalizer] = []

    @app.agent(topics.staging, concurrency=1)
    async def normalize(stream: StreamT[bytes]) -> None:
        """Turn each staging record into canonical records (or one dead letter) and send them."""
        if not normalizer_holder:
            normalizer_holder.append(await build_normalizer(settings))
        normalizer = normalizer_holder[0]
        send = app.producer.send  # Faust flushes its producer before it commits the staging offsets
        async for event in stream.events():
            message = event.message
            headers = [(k, bytes(v)) for k, v in (message.headers or [])]
            source_id = publication_id(dict(headers))
            marker = message.offset + 1  # where this record sits in its staging partition (0 = never seen)
            if seen is not None and source_id:
                previous = seen[source_id].current() or seen[source_id].delta(window)
                if is_redelivery(previous, marker):
                    normalizer.stats.duplicates += 1
                    continue
            origin = f"{message.topic}/{message.partition}/{message.offset}"
            dead_lettered = False
            for out in normalizer.process(message.key, message.value, headers, origin):
                dead_lettered = dead_lettered or out.dead_letter
                target = topics.dead_letters if out.dead_letter else topics.canonical[out.topic]
                await send(target.get_topic_name(), out.key, out.value, None, None, out.headers)
            if seen is not None and source_id and not dead_lettered:
                seen[source_id] = marker  # a dead letter may be replayed after a fix: not remembered

    @app.every(max(1.0, min(10.0, settings.key_cache_ttl / 4)))
    async def refresh_tenant_keys() -> None:
        """Reload tenant keys when half their TTL passed or a lookup missed (a new tenant or key)."""
        if normalizer_holder:
            keys = normalizer_holder[0].keys
            if isinstance(keys, Keyring) and await keys.ensure_fresh():
                log.info("tenant keys reloaded")

    @app.every(30.0)
    async def log_normalize_progress() -> None:
        """One line every 30 s: what normalize did so far."""
        if normalizer_holder:
            s = normalizer_holder[0].stats
            log.info(
                "normalize: %d staging records -> %d canonical, %d dead-lettered, %d duplicates dropped",
                s.records,
                s.canonical,
                s.dead_lettered,
                s.duplicates,
            )
