"""The bad-input invariant on the real stack: the labeled corpus of :mod:`tests.support.bad_input`, published
for real (SQS SendMessage to moto, Pub/Sub publish to the emulator), drained by one real worker (ingest +
normalize). Every publication ends as its canonical events or as exactly one dead letter holding its
original bytes (or their SHA-256 when over the size limit) with a reason; none is unaccounted for.

Publications are matched by their source message id, the one the publish call returned: dead letters carry
it in the ``source_message_id`` header, canonical records in the inner event's ``provenance``. The checks
per publication are the unit test's (:mod:`tests.unit.test_bad_input_fuzz`), so the two runs agree on what
"accounted for" means.

An SNS-envelope publication is sent as a raw SQS body, as a forged or hostile sender would; the envelope is
what the worker unwraps. The corpus names its tenants ``acme-bank`` and ``globex-capital`` (its payloads and
keys are built for those names), so the run is isolated by the resource names instead: tenant ``T`` is read
from ``carryover-legacy-<tag>-T``, and the worker's queue / subscription prefix is ``carryover-legacy-<tag>-``
(the tenant is the name minus the prefix, ``CARRYOVER_TENANT_SOURCE=name``).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from botocore.exceptions import ClientError
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from app.catalog.model import default_catalog, inner_event
from app.crypto.keyfile import write_key_file
from app.dev.stack.resources import (
    aws_clients,
    create_demo_tenants,
    delete_aws_tenant,
    delete_gcp_tenant,
    resource_name,
)
from app.normalize.normalizer import Outgoing
from app.settings import load
from tests.support.bad_input import (
    CLASSES,
    DEFAULT_MAX_MESSAGE_BYTES,
    TENANT_KEYS,
    TENANTS,
    FuzzPublication,
    corpus,
)
from tests.support.stack import RunningStack
from tests.support.worker import Worker, worker_env
from tests.unit.test_bad_input_fuzz import (
    DLQ_TOPIC,
    Outcome,
    check_canonical,
    check_dead_letter,
    check_headers,
    table,
)

SEED = 20260101
PER_CLASS = int(os.environ.get("CARRYOVER_BAD_INPUT_STACK_PER_CLASS", "4"))  # more by hand: a longer run
DRAIN_SECONDS = 60.0
SETTLE_SECONDS = 3.0
LOG_FORBIDDEN = ("Task exception was never retrieved", "Traceback", "Agent crashed")
CANONICAL_TOPICS = [t.name for t in default_catalog().canonical_topics()]
Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class Consumed:
    """One record as a consumer reads it, every header kept (repeated names too)."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers


# ---- keys and resources ----


def key_file_of_corpus(path: Path) -> Path:
    """A key file holding the corpus's fixed tenant keys (so valid encrypted publications decrypt)."""
    tenants = {
        tenant: {
            "current": current,
            "keys": {key_id: base64.b64encode(key).decode() for key_id, key in keys},
        }
        for tenant, (current, keys) in TENANT_KEYS.items()
    }
    return write_key_file(path, tenants)


# ---- publishing for real ----


async def send_sqs(sqs: Any, queue_url: str, pub: FuzzPublication) -> str:
    """SendMessage of the publication's SQS message (body and message attributes); its MessageId."""
    message = pub.sqs_message
    assert message is not None
    request: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": message["Body"]}
    if message.get("MessageAttributes"):
        request["MessageAttributes"] = message["MessageAttributes"]
    reply = await sqs.send_message(**request)
    return str(reply["MessageId"])


async def send_pubsub(http: aiohttp.ClientSession, host: str, topic: str, pub: FuzzPublication) -> str:
    """Publish of the publication's data and attributes (the REST API, data omitted when there is none)."""
    message: dict[str, Any] = {}
    if pub.data:
        message["data"] = base64.b64encode(pub.data).decode()
    if pub.attributes:
        message["attributes"] = pub.attributes
    async with http.post(f"http://{host}/v1/{topic}:publish", json={"messages": [message]}) as resp:
        text = await resp.text()
        if resp.status != 200:
            raise RuntimeError(f"Pub/Sub publish answered {resp.status}: {text[:200]}")
        return str((await resp.json(content_type=None))["messageIds"][0])


async def publish_all(
    pubs: Sequence[FuzzPublication], tag: str, project: str, pubsub_host: str
) -> tuple[dict[str, FuzzPublication], dict[str, str]]:
    """Publishes every publication to its tenant's queue or topic: (source message id -> publication,
    description -> why the API refused it)."""
    ids: dict[str, FuzzPublication] = {}
    refused: dict[str, str] = {}
    async with aws_clients() as aws, aiohttp.ClientSession() as http:
        urls = {
            tenant: str((await aws.sqs.get_queue_url(QueueName=resource_name(f"{tag}{tenant}")))["QueueUrl"])
            for tenant in TENANTS
        }

        async def one(pub: FuzzPublication) -> None:
            try:
                if pub.sqs_message is not None:
                    message_id = await send_sqs(aws.sqs, urls[pub.tenant], pub)
                else:
                    topic = f"projects/{project}/topics/{resource_name(f'{tag}{pub.tenant}')}"
                    message_id = await send_pubsub(http, pubsub_host, topic, pub)
            except (ClientError, RuntimeError) as exc:
                refused[pub.describe()] = str(exc)[:200]
                return
            assert message_id not in ids, f"source message id {message_id} returned twice"
            ids[message_id] = pub

        await asyncio.gather(*(one(pub) for pub in pubs))
    return ids, refused


# ---- reading what came out ----


def source_message_id(record: Consumed, prefix: str) -> str:
    """The source message id a record is of: the dead letter's header, or the canonical event's provenance."""
    if record.topic == prefix + DLQ_TOPIC:
        values = [v for name, v in record.headers if name == "source_message_id"]
        return values[0].decode("utf-8", "replace") if len(values) == 1 else f"<headers {values!r}>"
    envelope_type = default_catalog().envelope_class(record.topic.removeprefix(prefix))
    deserializer = ProtobufDeserializer(envelope_type, {"use.deprecated.format": False})
    envelope = deserializer(record.value, SerializationContext(record.topic, MessageField.VALUE))
    provenance = getattr(inner_event(envelope), "provenance")  # noqa: B009 - every inner event has one
    return str(provenance.source_message_id)


async def drain(
    bootstrap: str, topics: Sequence[str], prefix: str, ids: Mapping[str, FuzzPublication], deadline: float
) -> dict[str, list[Consumed]]:
    """Every record of ``topics`` by source message id, read until each id has a record (then
    :data:`SETTLE_SECONDS` more, for duplicates) or until ``deadline`` (monotonic)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=4 * 1_048_576
    )
    await consumer.start()
    found: dict[str, list[Consumed]] = collections.defaultdict(list)
    try:
        assigned: list[TopicPartition] = []
        missing = set(topics)
        settle_until: float | None = None
        while time.monotonic() < deadline:
            if missing:
                await consumer._client.force_metadata_update()  # noqa: SLF001 - topics made by the worker
                new = [
                    TopicPartition(topic, p)
                    for topic in sorted(missing)
                    for p in sorted(consumer.partitions_for_topic(topic) or ())
                ]
                if new:
                    missing -= {tp.topic for tp in new}
                    positions = {tp: await consumer.position(tp) for tp in assigned}
                    consumer.assign(assigned + new)
                    for tp, offset in positions.items():
                        consumer.seek(tp, offset)
                    await consumer.seek_to_beginning(*new)
                    assigned += new
            batch = await consumer.getmany(timeout_ms=300) if assigned else {}
            if not assigned:
                await asyncio.sleep(0.3)
            for records in batch.values():
                for r in records:
                    record = Consumed(r.topic, r.key, r.value, list(r.headers))
                    found[source_message_id(record, prefix)].append(record)
            if all(found.get(message_id) for message_id in ids):
                settle_until = settle_until or time.monotonic() + SETTLE_SECONDS
                if time.monotonic() >= settle_until:
                    break
        return found
    finally:
        await consumer.stop()


# ---- the invariant per publication (the unit test's checks) ----


def outcome_of(pub: FuzzPublication, records: Sequence[Consumed], prefix: str) -> Outcome:
    """What became of ``pub`` given every record that names its source message id."""
    out = Outcome(pub)
    letters = [r for r in records if r.topic == prefix + DLQ_TOPIC]
    canonical = [
        Outgoing(r.topic.removeprefix(prefix), r.key, r.value, r.headers)
        for r in records
        if r.topic != prefix + DLQ_TOPIC
    ]
    for record in records:
        check_headers(out, record.topic, record.key, record.headers)
    if not records:
        return out
    if letters and canonical:
        out.fail(f"{len(canonical)} canonical record(s) and {len(letters)} dead letter(s)")
    elif len(letters) > 1:
        reasons = [dict(r.headers).get("dlq_reason") for r in letters]
        out.fail(f"{len(letters)} dead letters (reasons {reasons}), expected exactly one")
    elif letters:
        stage = dict(letters[0].headers).get("dlq_stage", b"?").decode("utf-8", "replace")
        if check_dead_letter(out, stage, letters[0].value, letters[0].headers):
            out.ended = "dead_letter"
        if pub.valid:
            out.fail(f"valid publication dead-lettered ({out.reason})")
    else:
        out.ended = "canonical"
        ce_ids = collections.Counter(dict(r.headers).get("ce_id") for r in canonical)
        if max(ce_ids.values()) > 1:
            out.fail(f"canonical events duplicated: {sorted(ce_ids.items())}")
        order = list(pub.expected_ce_types)

        def rank(record: Outgoing) -> int:  # topics interleave: compare in the expected order
            ce_type = dict(record.headers).get("ce_type", b"").decode()
            return order.index(ce_type) if ce_type in order else len(order)

        check_canonical(out, sorted(canonical, key=rank))
    return out


def test_labeled_corpus_published_for_real_is_accounted_for(stack: RunningStack, tmp_path: Path) -> None:
    started = time.monotonic()
    tag = f"bx{uuid.uuid4().hex[:6]}-"
    pubs = corpus(seed=SEED, per_class=PER_CLASS, max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES)
    sendable = [p for p in pubs if not p.unpublishable]
    key_file = key_file_of_corpus(tmp_path / "keys.json")
    env = worker_env(
        stack,
        tmp_path,
        CARRYOVER_ROLES="ingest,normalize",
        CARRYOVER_KEY_FILE=str(key_file),
        CARRYOVER_SQS_QUEUE_PREFIX=f"carryover-legacy-{tag}",
        CARRYOVER_PUBSUB_SUBSCRIPTION_PREFIX=f"carryover-legacy-{tag}",
        CARRYOVER_TENANT_SOURCE="name",
        CARRYOVER_MAX_MESSAGE_BYTES=str(DEFAULT_MAX_MESSAGE_BYTES),
    )
    project = load(env).pubsub_project
    prefix = env["CARRYOVER_TOPIC_PREFIX"]
    resources = [f"{tag}{tenant}" for tenant in TENANTS]
    asyncio.run(create_demo_tenants(resources, project=project))
    worker: Worker | None = None
    try:
        ids, refused = asyncio.run(publish_all(sendable, tag, project, stack.pubsub_host))
        published = time.monotonic()
        worker = Worker(env=env, log_path=tmp_path / "worker.log").start()
        ready = time.monotonic()
        topics = [prefix + t for t in [*CANONICAL_TOPICS, DLQ_TOPIC]]
        found = asyncio.run(drain(stack.bootstrap, topics, prefix, ids, ready + DRAIN_SECONDS))
        drained = time.monotonic()
    finally:
        if worker is not None:
            worker.stop()
        asyncio.run(_delete(resources, project))
    log = (tmp_path / "worker.log").read_text(errors="replace")

    outcomes = [outcome_of(pub, found.get(message_id, []), prefix) for message_id, pub in ids.items()]
    stray = {message_id: len(records) for message_id, records in found.items() if message_id not in ids}
    report = table(outcomes)
    print(
        f"\nbad input on the real stack: {len(pubs)} publications, {len(pubs) - len(sendable)} unpublishable "
        f"(skipped), {len(refused)} refused by the API, {len(ids)} published; setup+publish "
        f"{published - started:.1f}s, worker start {ready - published:.1f}s, drain {drained - ready:.1f}s\n"
        + report
    )
    for what, why in refused.items():
        print(f"  refused: {what}: {why}")

    assert {o.pub.cls for o in outcomes} == set(CLASSES), "a class has no published member"
    failing = sorted({o.pub.cls for o in outcomes if o.problems})
    unaccounted = sorted({o.pub.cls for o in outcomes if o.ended == "unaccounted"})
    problems = [p for o in outcomes for p in o.problems]
    unaccounted_pubs = [o.pub.describe() for o in outcomes if o.ended == "unaccounted"]
    bad_log = [needle for needle in LOG_FORBIDDEN if needle in log]
    assert not unaccounted and not failing and not stray and not refused and not bad_log, (
        f"unaccounted in {unaccounted}: {unaccounted_pubs[:10]}\ninvariants broken in {failing}\n"
        f"records of unknown source message ids: {stray}\nrefused by the API: {refused}\n"
        f"worker log contains {bad_log}\n{report}\n" + "\n".join(problems[:20]) + "\n" + log[-3000:]
    )


async def _delete(resources: Sequence[str], project: str) -> None:
    """Drop this run's queues, topics and subscriptions (later workers with wider prefixes never see them)."""
    for resource in resources:
        await delete_aws_tenant(resource)
        await delete_gcp_tenant(resource, project=project)
