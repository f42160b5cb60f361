"""The normalize stage written without Faust, for :mod:`bench.normalize_bench` to compare against.

Both variants do exactly what the ``normalize`` agent does per staging record — the same
:class:`app.normalize.normalizer.Normalizer` built by
:func:`app.normalize.runtime.build_normalizer` from the same settings (key file, schema ids) — and write
the same canonical and dead-letter records with acks=all, committing consumed offsets only after the
writes were acknowledged:

* ``aiokafka``: a hand-written consume -> transform -> produce loop (one batch at a time);
* ``quix``: the same transformation as a Quix Streams ``StreamingDataFrame`` (runs in its own virtualenv,
  ``.venv-quix``: Quix Streams pins confluent-kafka < 2.13, carryover pins 2.16.1).

Run by the benchmark: ``python -m bench.normalize_variants aiokafka|quix``; configured by the same
``CARRYOVER_*`` environment variables as a worker (broker, topic prefix, key file).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from app.normalize.normalizer import Normalizer
from app.normalize.runtime import build_normalizer
from app.settings import Settings, load
from app.topics import STAGING

GROUP = "bench-normalize"  # + the topic prefix: every run and variant has its own group


async def aiokafka_loop(settings: Settings, normalizer: Normalizer) -> None:
    """Consume a batch, normalize it, produce the results, wait for acks, commit; until SIGTERM."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: PLC0415

    from app import local_broker  # noqa: PLC0415

    prefix = settings.topic_prefix
    consumer = AIOKafkaConsumer(
        prefix + STAGING,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=GROUP + prefix,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=8000,
        heartbeat_interval_ms=1000,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, **local_broker.producer_options(settings.local_broker)
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await producer.start()
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=1000)
            acks = []
            for records in batch.values():
                for r in records:
                    origin = f"{r.topic}/{r.partition}/{r.offset}"
                    for out in normalizer.process(r.key, r.value, list(r.headers), origin):
                        topic = prefix + out.topic
                        acks.append(await producer.send(topic, out.value, key=out.key, headers=out.headers))
            if acks:
                await asyncio.gather(*acks)
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


def quix_app(settings: Settings, normalizer: Normalizer) -> Any:
    """The same transformation as a Quix Streams application (at-least-once, acks=all)."""
    from quixstreams import Application, message_context  # noqa: PLC0415
    from quixstreams.models.serializers import SerializationContext, Serializer  # noqa: PLC0415

    from app.catalog.model import default_catalog  # noqa: PLC0415

    class OutgoingValue(Serializer):  # type: ignore[misc]
        """Writes an :class:`app.normalize.normalizer.Outgoing`'s framed value."""

        def __call__(self, value: Any, ctx: SerializationContext) -> bytes:
            return bytes(value.value)

    prefix = settings.topic_prefix
    app = Application(
        broker_address=settings.bootstrap_servers,
        consumer_group=GROUP + prefix,
        auto_offset_reset="earliest",
        processing_guarantee="at-least-once",
        use_changelog_topics=False,
        auto_create_topics=False,
        producer_extra_config={"acks": "all", "enable.idempotence": not settings.local_broker},
        loglevel="WARNING",
    )
    source = app.topic(prefix + STAGING, key_deserializer="bytes", value_deserializer="bytes")
    sdf = app.dataframe(source)

    def process(value: bytes, key: bytes, _timestamp: int, headers: Any) -> list[Any]:
        ctx = message_context()
        origin = f"{prefix}{STAGING}/{ctx.partition}/{ctx.offset}"
        return normalizer.process(key, value, list(headers or []), origin)

    sdf = sdf.apply(process, expand=True, metadata=True)
    targets = [name for name in default_catalog().topics if name != STAGING]
    for name in targets:
        topic = app.topic(prefix + name, key_serializer="bytes", value_serializer=OutgoingValue())
        branch = sdf[sdf.apply(lambda out, name=name: out.topic == name)]
        branch = branch.set_headers(lambda out, _key, _ts, _headers: out.headers)
        branch.to_topic(topic, key=lambda out: out.key)
    return app


def main(argv: list[str]) -> int:
    """``aiokafka`` or ``quix``: run that variant until SIGTERM."""
    variant = argv[0] if argv else ""
    if variant not in ("aiokafka", "quix"):
        print("usage: python -m bench.normalize_variants aiokafka|quix", file=sys.stderr)
        return 2
    settings = load()
    normalizer = asyncio.run(build_normalizer(settings))
    print(f"{variant} normalize variant ready", flush=True)
    if variant == "aiokafka":
        asyncio.run(aiokafka_loop(settings, normalizer))
    else:
        quix_app(settings, normalizer).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
