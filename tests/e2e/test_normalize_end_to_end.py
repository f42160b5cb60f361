"""Decrypt, normalize and repartition on the real stack: simulated legacy traffic of several tenants over
both clouds goes through a real worker (ingest + normalize); what a consumer reads from the canonical
topics, decoded with Confluent's ProtobufDeserializer, equals the simulator's ground truth; nothing of
tenant A carries tenant B's data or key id; every bad payload is in the DLQ with its reason. Then a
dead letter is fixed (its key arrives) and `carryover dlq replay` brings it through.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import os
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka.partitioner import murmur2
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from app.catalog.model import default_catalog, inner_event
from app.crypto import aead
from app.crypto.keyfile import LocalKeyFileProvider, generate_key_file, read_key_file, write_key_file
from app.crypto.keyring import Keyring
from app.dev.simulate.publish import LegacyMessage, Publisher
from app.dev.simulate.traffic import Publication, TrafficConfig, TrafficGenerator
from app.dev.stack.resources import create_demo_tenants
from app.ingest.landing import provenance_headers
from app.normalize.runtime import build_normalizer
from app.settings import load
from models.legacy.codec import encode_encrypted, encode_json
from tests.support.cli import carryover
from tests.support.ground_truth import Fields, event_fields
from tests.support.kafka import Record, produce_records, read_topic, wait_until_committed
from tests.support.stack import RunningStack
from tests.support.worker import Worker, worker_env

CANONICAL = [
    "collaboration.conversations.v1",
    "collaboration.messages.v1",
    "identity.users.v1",
    "compliance.actions.v1",
]
PUBLICATIONS = 240
STAGING_PARTITIONS = default_catalog().topics["legacy.staging.v1"].partitions


async def _publish(publications: list[Publication], project: str) -> None:
    async with Publisher(project=project) as publisher:
        by_target: dict[tuple[str, str], list[LegacyMessage]] = collections.defaultdict(list)
        for p in publications:
            by_target[(p.cloud, p.tenant_id)].append(LegacyMessage(p.body, dict(p.attributes)))
        for (cloud, tenant), messages in by_target.items():
            await publisher.publish(cloud, tenant, messages)  # type: ignore[arg-type]


def staging_record(p: Publication, message_id: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of ``p`` as SQS ingestion lands it in staging."""
    headers = provenance_headers(
        source="sqs", source_id="q", source_message_id=message_id, received_at_ms=1, tenant=p.tenant_id
    )
    return p.tenant_id.encode(), p.body, headers + [(k, v.encode()) for k, v in p.attributes.items()]


def ingest_and_normalize_env(
    stack: RunningStack, tmp_path: Path, key_file: Path, tenant_prefix: str, **extra: str
) -> dict[str, str]:
    """A worker running ingest + normalize over the tenants whose names start with ``tenant_prefix``."""
    return worker_env(
        stack,
        tmp_path,
        CARRYOVER_ROLES="ingest,normalize",
        CARRYOVER_KEY_FILE=str(key_file),
        CARRYOVER_SQS_QUEUE_PREFIX=f"carryover-legacy-{tenant_prefix}",
        CARRYOVER_PUBSUB_SUBSCRIPTION_PREFIX=f"carryover-legacy-{tenant_prefix}",
        CARRYOVER_TENANT_SOURCE="attribute",
        **extra,
    )


def _decode(record: Record) -> Any:
    envelope_type = default_catalog().envelope_class(record.topic.split(".", 1)[1])
    deserializer = ProtobufDeserializer(envelope_type, {"use.deprecated.format": False})
    return inner_event(deserializer(record.value, SerializationContext(record.topic, MessageField.VALUE)))


def test_simulated_traffic_matches_ground_truth_across_tenants_and_clouds(
    stack: RunningStack, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    tenants = [f"e2e{tag}-t{i}" for i in range(4)]  # alternating aws / gcp
    key_file = generate_key_file(tmp_path / "keys.json", tenants)
    keys = Keyring.static(asyncio.run(LocalKeyFileProvider(key_file).load()))
    project = "carryover-local"
    asyncio.run(create_demo_tenants(tenants, project=project))
    publications = TrafficGenerator(
        TrafficConfig(tenants=tenants, conversations_per_tenant=3, bad_fraction=0.1, seed=7), keys
    ).take(PUBLICATIONS)
    asyncio.run(_publish(publications, project))
    expected_events = [e for p in publications for e in p.expected]
    expected_dead = collections.Counter(p.dead_letter_reason for p in publications if p.dead_letter_reason)
    assert {p.cloud for p in publications} == {"aws", "gcp"} and expected_dead

    env = ingest_and_normalize_env(stack, tmp_path, key_file, f"e2e{tag}-", CARRYOVER_PUBSUB_PROJECT=project)
    prefix = env["CARRYOVER_TOPIC_PREFIX"]
    worker = Worker(env=env, log_path=tmp_path / "worker.log").start()
    try:
        want_dead = sum(expected_dead.values())
        dead = asyncio.run(read_topic(stack.bootstrap, f"{prefix}carryover.dlq.v1", want_dead, wait=60))
        canonical: list[Record] = []
        for topic in CANONICAL:
            want = sum(1 for e in expected_events if e.topic == topic)
            canonical += asyncio.run(read_topic(stack.bootstrap, prefix + topic, want, wait=45))
    finally:
        worker.stop()
    log = worker.log_tail()

    # every canonical event of the ground truth, no more, no less
    names_by_type: dict[str, set[tuple[str, ...]]] = collections.defaultdict(set)
    remaining: collections.Counter[tuple[str, str, str, Fields]] = collections.Counter()
    for e in expected_events:
        names_by_type[e.ce_type].add(tuple(sorted(e.fields)))
        remaining[(e.topic, e.ce_type, e.tenant_id, tuple(sorted(e.fields.items())))] += 1
    unmatched = []
    ce_ids = collections.Counter(r.headers["ce_id"] for r in canonical)
    tenant_keys = read_key_file(key_file)
    cross_tenant: list[tuple[Any, ...]] = []
    for record in canonical:
        tenant = record.key.decode() if record.key else ""
        event = _decode(record)
        ce_type = record.headers["ce_type"].decode()
        # tenant isolation: key, header, payload and key id all name the same tenant
        key_id = record.headers.get("ce_encryptionkeyid", b"").decode()
        if record.headers["ce_tenantid"].decode() != tenant or event.tenant_id != tenant:
            cross_tenant.append((tenant, record.headers["ce_tenantid"], event.tenant_id))
        elif key_id and key_id not in tenant_keys[tenant]["keys"]:
            cross_tenant.append((tenant, key_id))
        topic = record.topic.removeprefix(prefix)
        for names in names_by_type[ce_type]:
            candidate = (topic, ce_type, tenant, event_fields(event, names, tenant, keys))
            if remaining[candidate] > 0:
                remaining[candidate] -= 1
                break
        else:
            unmatched.append((topic, ce_type, tenant))
    missing = +remaining
    assert not cross_tenant, cross_tenant[:5]
    assert not unmatched and not missing, (unmatched[:5], list(missing.items())[:5], log)
    assert len(canonical) == len(expected_events)
    assert max(ce_ids.values()) == 1  # no duplicates
    # repartitioned by tenant as Kafka's Java client (and so Confluent's) would: murmur2 of the key
    catalog = default_catalog()
    partitions = {r.topic: catalog.topics[r.topic.removeprefix(prefix)].partitions for r in canonical}
    misplaced = [
        (r.topic, r.key, r.partition)
        for r in canonical
        if r.key is None or r.partition != (murmur2(r.key) & 0x7FFFFFFF) % partitions[r.topic]
    ]
    assert not misplaced, misplaced[:5]

    # every bad payload dead-lettered with its reason, original bytes and headers kept
    assert collections.Counter(r.headers["dlq_reason"].decode() for r in dead) == expected_dead
    bodies = {p.publication_id: p.body for p in publications}
    for record in dead:
        assert record.headers["dlq_stage"] == b"normalize"
        assert record.headers["dlq_error"]
        assert record.headers["dlq_origin"].startswith(f"{prefix}legacy.staging.v1/".encode())
        assert record.value == bodies[record.headers["publicationId"].decode()]
        assert record.headers["tenant"] == record.key
    duplicates = sum(n - 1 for n in ce_ids.values())
    print(
        f"\nnormalize e2e: {len(publications)} legacy publications over {len(tenants)} tenants -> "
        f"{len(canonical)} canonical (ground truth {len(expected_events)}), {len(dead)} dead-lettered "
        f"(ground truth {want_dead}), {duplicates} duplicated, {len(cross_tenant)} cross-tenant"
    )


def test_dead_letter_replayed_after_its_key_arrives(stack: RunningStack, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    tenant = f"rp{tag}-bank"
    full = read_key_file(generate_key_file(tmp_path / "full.json", [tenant], versions=3))
    worker_keys = {
        tenant: {
            "current": f"{tenant}/v2",
            "keys": {k: v for k, v in full[tenant]["keys"].items() if not k.endswith("/v3")},
        }
    }
    key_file = write_key_file(tmp_path / "keys.json", worker_keys)
    asyncio.run(create_demo_tenants([tenant], project="carryover-local"))
    # the legacy backend already encrypts with v3, which has not reached carryover yet
    inner = encode_json(
        "USER_CREATED",
        2,
        {
            "user_id": "1001",
            "username": "jdoe",
            "display_name": "J Doe",
            "email": "jdoe@example.com",
            "business_unit": "Rates",
        },
        tenant_id=tenant,
        occurred_ms=1_795_000_000_000,
    )
    key_id = f"{tenant}/v3"
    v3 = base64.b64decode(full[tenant]["keys"][key_id])
    ciphertext = aead.encrypt(v3, inner, tenant_id=tenant, key_id=key_id)
    body = encode_encrypted(tenant, key_id, ciphertext)
    asyncio.run(_publish_one(tenant, body))

    env = ingest_and_normalize_env(
        stack, tmp_path, key_file, f"rp{tag}-", CARRYOVER_KEY_CACHE_TTL_SECONDS="8"
    )
    prefix = env["CARRYOVER_TOPIC_PREFIX"]
    worker = Worker(env=env, log_path=tmp_path / "worker.log").start()
    try:
        dead = asyncio.run(read_topic(stack.bootstrap, f"{prefix}carryover.dlq.v1", 1, wait=60))
        assert [r.headers["dlq_reason"] for r in dead] == [b"unknown_key_id"], worker.log_tail()
        write_key_file(key_file, full)  # the key arrives; the worker reloads within half the TTL
        time.sleep(6)
        cli_env = {**os.environ, **env}
        replay = carryover(["dlq", "replay"], cli_env)
        assert replay.returncode == 0 and "replayed 1 dead letters" in replay.stdout, replay.stderr
        users = asyncio.run(read_topic(stack.bootstrap, f"{prefix}identity.users.v1", 1, wait=60))
        again = carryover(["dlq", "replay"], cli_env)
    finally:
        worker.stop()
    assert len(users) == 1, worker.log_tail()
    created = _decode(users[0])
    assert (created.tenant_id, created.user_id, created.business_unit) == (tenant, "1001", "Rates")
    assert "replayed 0 dead letters" in again.stdout  # the replay group remembers where it stopped


async def _publish_one(tenant: str, body: bytes) -> None:
    async with Publisher(project="carryover-local") as publisher:
        await publisher.publish(
            "aws", tenant, [LegacyMessage(body, {"tenantId": tenant, "eventType": "USER_CREATED"})]
        )


def test_redelivered_staging_records_are_dropped_within_the_window(
    stack: RunningStack, tmp_path: Path
) -> None:
    """Source messages landed twice (redeliveries at the source) yield their events once, and the dropped
    duplicates are committed like any other record (no lag left behind them)."""
    tenant = f"dd{uuid.uuid4().hex[:6]}-bank"
    key_file = generate_key_file(tmp_path / "keys.json", [tenant])
    keys = Keyring.static(asyncio.run(LocalKeyFileProvider(key_file).load()))
    publications = TrafficGenerator(TrafficConfig(tenants=[tenant], seed=3), keys).take(60)
    once = [staging_record(p, f"m-{i}") for i, p in enumerate(publications)]
    records = once + once[:40]  # the first 40 redelivered, at new staging offsets
    expected = [e for p in publications for e in p.expected]
    env = worker_env(stack, tmp_path, CARRYOVER_ROLES="normalize", CARRYOVER_KEY_FILE=str(key_file))
    prefix, group = env["CARRYOVER_TOPIC_PREFIX"], env["CARRYOVER_APP_ID"]
    staging = f"{prefix}legacy.staging.v1"
    worker = Worker(env=env, log_path=tmp_path / "worker.log").start()
    try:
        asyncio.run(produce_records(stack.bootstrap, staging, records))
        asyncio.run(
            wait_until_committed(stack.bootstrap, group, staging, STAGING_PARTITIONS, len(records), 60)
        )
        canonical = []
        for topic, count in collections.Counter(e.topic for e in expected).items():
            canonical += asyncio.run(read_topic(stack.bootstrap, prefix + topic, count, wait=30, settle=1.0))
    finally:
        worker.stop()
    assert len(canonical) == len(expected), worker.log_tail()
    assert len({r.headers["ce_id"] for r in canonical}) == len(expected)


def test_redeliveries_after_a_restart_are_dropped_by_the_recovered_window(
    stack: RunningStack, tmp_path: Path
) -> None:
    """The dedupe window survives a restart: a worker with an empty data dir rebuilds it from the
    changelog (batches of marks) and still drops source messages the previous worker normalized, while
    it normalizes the new ones."""
    tenant = f"dr{uuid.uuid4().hex[:6]}-bank"
    key_file = generate_key_file(tmp_path / "keys.json", [tenant])
    keys = Keyring.static(asyncio.run(LocalKeyFileProvider(key_file).load()))
    publications = TrafficGenerator(TrafficConfig(tenants=[tenant], seed=5), keys).take(80)
    records = [staging_record(p, f"r-{i}") for i, p in enumerate(publications)]
    first, fresh = records[:60], records[60:]
    expected = [e for p in publications for e in p.expected]
    env = worker_env(stack, tmp_path, CARRYOVER_ROLES="normalize", CARRYOVER_KEY_FILE=str(key_file))
    prefix, group = env["CARRYOVER_TOPIC_PREFIX"], env["CARRYOVER_APP_ID"]
    staging = f"{prefix}legacy.staging.v1"
    worker_a = Worker(env=dict(env), log_path=tmp_path / "worker-a.log").start()
    try:
        asyncio.run(produce_records(stack.bootstrap, staging, first))
        asyncio.run(wait_until_committed(stack.bootstrap, group, staging, STAGING_PARTITIONS, len(first), 60))
    finally:
        worker_a.stop()
    worker_b = Worker(
        env={**env, "CARRYOVER_DATA_DIR": str(tmp_path / "worker-b")}, log_path=tmp_path / "worker-b.log"
    ).start()
    try:
        asyncio.run(produce_records(stack.bootstrap, staging, first[:40] + fresh))  # 40 redelivered
        total = len(first) + 40 + len(fresh)
        asyncio.run(wait_until_committed(stack.bootstrap, group, staging, STAGING_PARTITIONS, total, 90))
        canonical = []
        for topic, count in collections.Counter(e.topic for e in expected).items():
            canonical += asyncio.run(read_topic(stack.bootstrap, prefix + topic, count, wait=30, settle=2.0))
    finally:
        worker_b.stop()
    assert len(canonical) == len(expected), worker_b.log_tail()
    assert len({r.headers["ce_id"] for r in canonical}) == len(expected)


def test_replay_from_staging_rebuilds_the_same_canonical_records(stack: RunningStack, tmp_path: Path) -> None:
    """`carryover replay --from-staging --target-prefix P` re-normalizes the staging log into P-prefixed
    topics: byte for byte what the normalizer makes of those records (deterministic ce_id and nonces)."""
    tag = uuid.uuid4().hex[:6]
    tenants = [f"rb{tag}-a", f"rb{tag}-b"]
    key_file = generate_key_file(tmp_path / "keys.json", tenants)
    keys = Keyring.static(asyncio.run(LocalKeyFileProvider(key_file).load()))
    config = TrafficConfig(tenants=tenants, bad_fraction=0.2, seed=5)
    publications = TrafficGenerator(config, keys).take(40)
    records = [staging_record(p, f"m-{i}") for i, p in enumerate(publications)]
    env = worker_env(stack, tmp_path, CARRYOVER_KEY_FILE=str(key_file))
    prefix, target = env["CARRYOVER_TOPIC_PREFIX"], f"rebuilt{tag}."
    asyncio.run(produce_records(stack.bootstrap, f"{prefix}legacy.staging.v1", records))

    normalizer = asyncio.run(build_normalizer(load(env)))
    expected: dict[str, list[tuple[bytes | None, bytes]]] = collections.defaultdict(list)
    for key, value, headers in records:
        for out in normalizer.process(key, value, headers, "staging"):
            if not out.dead_letter:
                expected[out.topic].append((out.key, out.value))
    assert len(expected) >= 3 and normalizer.stats.dead_lettered > 0

    replay = carryover(["replay", "--from-staging", "--target-prefix", target], env)
    assert replay.returncode == 0, replay.stderr
    assert f"replayed {len(records)} staging records" in replay.stdout, replay.stdout
    for topic, want in expected.items():
        got = asyncio.run(read_topic(stack.bootstrap, target + topic, len(want), wait=30))
        assert sorted((r.key, r.value) for r in got) == sorted(want), topic
    dead = asyncio.run(
        read_topic(stack.bootstrap, f"{target}carryover.dlq.v1", normalizer.stats.dead_lettered)
    )
    assert len(dead) == normalizer.stats.dead_lettered
    assert all(r.headers["dlq_reason"] for r in dead)
