"""The processes :mod:`bench.normalize_bench` compares: carryover's Faust worker and the same stage written
without Faust.

All three run the same :class:`app.normalize.normalizer.Normalizer` built by
:func:`app.normalize.runtime.build_normalizer` from the same settings (key file, schema ids), write the same
canonical and dead-letter records with acks=all, and commit consumed offsets only after those writes (and
the dedupe window's changelog writes) were acknowledged:

* ``carryover``: ``faust -A app worker`` (normalize role), run in this process so that the probe below sees
  its first record;
* ``aiokafka``: a hand-written consume -> transform -> produce loop, one ``getmany`` batch at a time;
* ``quix``: the same transformation as a Quix Streams ``StreamingDataFrame`` (runs in its own virtualenv,
  ``.venv-quix``: Quix Streams pins confluent-kafka < 2.13, carryover pins 2.16.1).

Dedupe (``CARRYOVER_DEDUPE_WINDOW_SECONDS`` > 0), the same guarantee in each (a source message landed
again at another staging offset within the window is dropped; the same staging record re-read is processed
again; no committed offset is ahead of its marks in the changelog):

* ``carryover``: the agent's :class:`app.normalize.dedupe.SeenMarks` (in memory per partition), one
  changelog record per staging partition and flush, written before Faust commits;
* ``aiokafka``: the same :class:`SeenMarks`, its batches written to a changelog topic with each
  ``getmany`` batch's outputs, acknowledged before the commit (it never rebuilds marks from that
  changelog: the benchmark never restarts or rebalances it);
* ``quix``: Quix Streams' own state (``stateful=True``: RocksDB plus a changelog topic, flushed at each
  checkpoint before the commit) holding ``source id -> [staging offset + 1, time]`` per message key: one
  changelog record per source id, as Quix writes one per changed key.

Every variant prints ``BENCH_FIRST <monotonic> <own CPU ticks> <broker CPU ticks>`` when it hands its first
staging record to the normalizer (the benchmark's clock starts there; ``BENCH_BROKER_PID`` names the broker).

Run by the benchmark: ``python -m bench.normalize_variants carryover|aiokafka|quix``; configured by the same
``CARRYOVER_*`` environment variables as a worker (broker, topic prefix, key file, dedupe window).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import Any

from app.normalize.mapping.pipeline import publication_id
from app.normalize.normalizer import REASON_AGENT_ERROR, Normalizer, header_map
from app.normalize.runtime import build_normalizer
from app.settings import Settings, load
from app.topics import STAGING

GROUP = "bench-normalize"  # + the topic prefix: every run and variant has its own group
PEER_LINGER_MS = 5
"""Producer linger of the raw loop and Quix Streams (librdkafka's default; the raw loop sends a whole batch
and then awaits it, so a longer linger only delays it). carryover uses CARRYOVER_PRODUCER_LINGER_MS."""
SEEN_CHANGELOG = "bench.normalize-seen-changelog"
"""The raw loop's dedupe changelog topic (+ the topic prefix; created by the benchmark)."""


def cpu_ticks(pid: int | str) -> int:
    """User + system CPU of process ``pid`` (all its threads) in clock ticks; 0 when it cannot be read."""
    try:
        stat = open(f"/proc/{pid}/stat").read()  # noqa: PTH123, SIM115 - a tiny read
    except OSError:
        return 0
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def install_first_record_probe() -> None:
    """Print ``BENCH_FIRST`` at the first :meth:`Normalizer.process` call of this process, then get out of
    the way (the original method is put back)."""
    original = Normalizer.process
    broker = os.environ.get("BENCH_BROKER_PID", "0")

    def first(self: Normalizer, *args: Any) -> Any:
        Normalizer.process = original  # type: ignore[method-assign]
        line = f"BENCH_FIRST {time.monotonic():.6f} {cpu_ticks('self')} {cpu_ticks(broker)}"
        print(line, file=sys.__stdout__, flush=True)  # not Faust's redirected stdout
        return original(self, *args)

    Normalizer.process = first  # type: ignore[method-assign]


def run_faust_worker() -> None:
    """``faust -A app worker -l info --without-web`` in this process."""
    from faust.cli.faust import cli  # noqa: PLC0415

    sys.argv = ["faust", "-A", "app", "worker", "-l", "info", "--without-web"]
    cli()


async def aiokafka_loop(settings: Settings, normalizer: Normalizer) -> None:
    """Consume a batch, dedupe and normalize it, produce the results and the dedupe batches, wait for
    every ack, commit; until SIGTERM."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: PLC0415

    from app import local_broker  # noqa: PLC0415
    from app.normalize.dedupe import SeenMarks  # noqa: PLC0415 - not in a --before-tree's app

    prefix = settings.topic_prefix
    consumer = AIOKafkaConsumer(
        prefix + STAGING,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=GROUP + prefix,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=8000,
        heartbeat_interval_ms=1000,
        fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        linger_ms=PEER_LINGER_MS,
        **local_broker.producer_options(settings.local_broker),
    )
    marks = SeenMarks(settings.dedupe_window_seconds) if settings.dedupe_window_seconds > 0 else None
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
                    marker, at = r.offset + 1, r.timestamp / 1000
                    headers = list(r.headers)
                    source_id = ""
                    try:
                        source_id = publication_id(dict(headers))
                        if marks is not None and source_id:
                            if not marks.loaded(r.partition):
                                marks.load(r.partition, [])
                            if marks.is_duplicate(r.partition, source_id, marker, at):
                                normalizer.stats.duplicates += 1
                                continue
                        outgoing = normalizer.process(r.key, r.value, headers, origin)
                    except Exception:  # noqa: BLE001 - as the agent's guard: a dead letter
                        letter = normalizer.dead_letter(
                            r.key, r.value, headers, REASON_AGENT_ERROR, "", origin
                        )
                        outgoing = [letter]
                    for out in outgoing:
                        topic = prefix + out.topic
                        acks.append(await producer.send(topic, out.value, key=out.key, headers=out.headers))
                    if marks is not None and source_id and not any(o.dead_letter for o in outgoing):
                        marks.remember(r.partition, source_id, marker, at)
            if marks is not None:
                for partition, key, value in marks.take_batches():
                    changelog = prefix + SEEN_CHANGELOG
                    sent = await producer.send(changelog, value, key=key.encode(), partition=partition)
                    acks.append(sent)
            if acks:
                await asyncio.gather(*acks)
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


def quix_app(settings: Settings, normalizer: Normalizer) -> Any:
    """The same transformation as a Quix Streams application (at-least-once, acks=all); one terminal
    step produces each output to its topic (no per-topic filter branches)."""
    from quixstreams import Application, message_context  # noqa: PLC0415

    prefix = settings.topic_prefix
    window = float(settings.dedupe_window_seconds)
    app = Application(
        broker_address=settings.bootstrap_servers,
        consumer_group=GROUP + prefix,
        auto_offset_reset="earliest",
        processing_guarantee="at-least-once",
        use_changelog_topics=window > 0,
        auto_create_topics=window > 0,  # the state's changelog topic; the others exist
        state_dir=str(settings.data_dir / "quix-state"),
        producer_extra_config={
            "acks": "all",
            "enable.idempotence": not settings.local_broker,
            "linger.ms": PEER_LINGER_MS,
        },
        consumer_extra_config={"fetch.wait.max.ms": settings.consumer_fetch_max_wait_ms},
        loglevel="WARNING",
    )
    source = app.topic(prefix + STAGING, key_deserializer="bytes", value_deserializer="bytes")
    sdf = app.dataframe(source)
    row_producer: list[Any] = []

    def normalized(value: bytes, key: bytes, timestamp: int, headers: Any, state: Any = None) -> list[Any]:
        ctx = message_context()
        origin = f"{prefix}{STAGING}/{ctx.partition}/{ctx.offset}"
        marker, at = ctx.offset + 1, timestamp / 1000
        pairs = list(headers or [])
        source_id = ""
        try:
            source_id = publication_id(header_map(pairs)) if state is not None else ""
            if source_id:
                mark = state.get(source_id)
                if mark is not None and mark[0] != marker and at - mark[1] < window:
                    normalizer.stats.duplicates += 1
                    return []
            outgoing = normalizer.process(key, value, pairs, origin)
        except Exception:  # noqa: BLE001 - as the agent's guard: a dead letter
            outgoing = [normalizer.dead_letter(key, value, pairs, REASON_AGENT_ERROR, "", origin)]
        if source_id and not any(o.dead_letter for o in outgoing):
            state.set(source_id, [marker, at])
        return outgoing

    def send(out: Any) -> None:
        # Quix's own RowProducer: flushed (every delivery acknowledged) at each checkpoint before the
        # consumer's offsets are committed, exactly as its to_topic() sinks are.
        if not row_producer:
            row_producer.append(app._producer)  # noqa: SLF001 - the producer to_topic() uses
        row_producer[0].produce(topic=prefix + out.topic, value=out.value, key=out.key, headers=out.headers)

    if window > 0:
        sdf = sdf.apply(normalized, expand=True, metadata=True, stateful=True)
    else:
        sdf = sdf.apply(normalized, expand=True, metadata=True)
    sdf.update(send)
    return app


def main(argv: list[str]) -> int:
    """``carryover``, ``aiokafka`` or ``quix``: run that variant until SIGTERM."""
    variant = argv[0] if argv else ""
    if variant not in ("carryover", "aiokafka", "quix"):
        print("usage: python -m bench.normalize_variants carryover|aiokafka|quix", file=sys.stderr)
        return 2
    install_first_record_probe()
    if variant == "carryover":
        run_faust_worker()
        return 0
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
