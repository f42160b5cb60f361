"""Bad input on the real stack: a record is never skipped, never taken for another's copy.

* A staging record whose dead letter would be over Kafka's record limit (case 2 of the bad-input issue:
  ~1 MB of payload and attributes) is dead-lettered within the limit, with its size and SHA-256, and the
  records after it in the same partition go through.
* An exception that escapes the pure core inside the agent (injected) dead-letters that record with reason
  ``agent_error``; the agent is not restarted past it, and the records after it go through.
* Two tenants whose Pub/Sub topics number their messages alike both arrive whole (dedupe and ce_id are
  scoped by tenant and source).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import uuid
from pathlib import Path

from app.crypto.keyfile import LocalKeyFileProvider, generate_key_file
from app.crypto.keyring import Keyring
from app.dev.simulate.traffic import TrafficConfig, TrafficGenerator
from app.ingest.landing import provenance_headers
from tests.e2e.fault_app.normalize import FAULT_MARK
from tests.e2e.test_normalize_end_to_end import STAGING_PARTITIONS, staging_record
from tests.support.kafka import produce_records, read_topic, wait_until_committed
from tests.support.stack import RunningStack
from tests.support.worker import Worker, worker_env

KAFKA_LIMIT = 1_048_576


def test_oversized_dead_letter_and_an_agent_fault_never_skip_a_record(
    stack: RunningStack, tmp_path: Path
) -> None:
    tenant = f"bi{uuid.uuid4().hex[:6]}-bank"
    key_file = generate_key_file(tmp_path / "keys.json", [tenant])
    keys = Keyring.static(asyncio.run(LocalKeyFileProvider(key_file).load()))
    good = TrafficGenerator(TrafficConfig(tenants=[tenant], seed=11), keys).take(8)
    provenance = provenance_headers(
        source="pubsub", source_id="sub", source_message_id="big-1", received_at_ms=1, tenant=tenant
    )
    # case 2: a payload just under the ingestion limit plus 100 large attributes (~1 045 000 bytes,
    # written by an older version or another producer): as a dead letter it would be over the limit
    big_value = b"\x00" * 899_000
    big_headers = provenance + [(f"attr{i:03d}", b"a" * 1_450) for i in range(100)]
    fault_value = b'{"note": "' + FAULT_MARK + b'"}'
    fault_headers = provenance_headers(
        source="pubsub", source_id="sub", source_message_id="fault-1", received_at_ms=1, tenant=tenant
    )
    key = tenant.encode()  # one key: one staging partition, in this order
    records = [staging_record(p, f"g-{i}") for i, p in enumerate(good[:4])]
    records += [(key, big_value, big_headers), (key, fault_value, fault_headers)]
    records += [staging_record(p, f"g-{i + 4}") for i, p in enumerate(good[4:])]
    assert len(big_value) + sum(len(k) + len(v) for k, v in big_headers) > 1_000_000
    expected = [e for p in good for e in p.expected]

    env = worker_env(stack, tmp_path, CARRYOVER_ROLES="normalize", CARRYOVER_KEY_FILE=str(key_file))
    prefix, group = env["CARRYOVER_TOPIC_PREFIX"], env["CARRYOVER_APP_ID"]
    staging = f"{prefix}legacy.staging.v1"
    worker = Worker(env=env, log_path=tmp_path / "worker.log", app_module="tests.e2e.fault_app.normalize")
    worker.start()
    try:
        asyncio.run(produce_records(stack.bootstrap, staging, records, max_request_size=2 * KAFKA_LIMIT))
        asyncio.run(
            wait_until_committed(stack.bootstrap, group, staging, STAGING_PARTITIONS, len(records), 60)
        )
        dead = asyncio.run(read_topic(stack.bootstrap, f"{prefix}carryover.dlq.v1", 2, wait=30))
        canonical = []
        for topic, count in collections.Counter(e.topic for e in expected).items():
            canonical += asyncio.run(read_topic(stack.bootstrap, prefix + topic, count, wait=30))
    finally:
        worker.stop()
    log = worker.log_tail(20_000)

    by_reason = {r.headers["dlq_reason"]: r for r in dead}
    assert sorted(by_reason) == [b"agent_error", b"malformed"], (sorted(by_reason), log[-3000:])
    big = by_reason[b"malformed"]  # zero bytes are not a legacy event; its dead letter had to fit
    assert len(big.value) + sum(len(k) + len(v) for k, v in big.headers.items()) <= KAFKA_LIMIT
    assert big.headers["dlq_truncated"] == b"true"
    assert big.headers["dlq_original_bytes"] == str(len(big_value)).encode()
    assert big.headers["dlq_original_sha256"] == hashlib.sha256(big_value).hexdigest().encode()
    assert big_value.startswith(big.value)
    fault = by_reason[b"agent_error"]
    assert fault.value == fault_value and b"RuntimeError" in fault.headers["dlq_error"]
    assert fault.headers["source_message_id"] == b"fault-1"
    # every good record, before and after them in the same partition, went through
    assert len(canonical) == len(expected), log[-3000:]
    assert "injected fault" in log and "Traceback" in log  # logged with its traceback, then dead-lettered
    assert "Agent crashed" not in log and "restarting" not in log.lower()


def test_two_tenants_whose_message_ids_collide_both_arrive_whole(stack: RunningStack, tmp_path: Path) -> None:
    """Real Pub/Sub numbers messages per topic, so two tenants' subscriptions hand out the same ids (Google's
    emulator numbers them across topics: 0 shared when tried, so the collision is written to staging as real
    Pub/Sub would land it). A raw SQS body may claim the same ids too. Every publication arrives."""
    tag = uuid.uuid4().hex[:6]
    tenants = [f"id{tag}-a", f"id{tag}-b"]
    key_file = generate_key_file(tmp_path / "keys.json", tenants)
    keys = Keyring.static(asyncio.run(LocalKeyFileProvider(key_file).load()))
    publications = TrafficGenerator(TrafficConfig(tenants=tenants, seed=9), keys).take(60)
    records = []
    numbering: collections.Counter[tuple[str, str]] = collections.Counter()
    for i, p in enumerate(publications):
        source, source_id = ("pubsub", f"projects/p/subscriptions/{p.tenant_id}") if i % 3 else ("sqs", "q")
        numbering[(p.tenant_id, source)] += 1
        message_id = str(numbering[(p.tenant_id, source)])  # 1, 2, 3 ... per tenant and source
        headers = provenance_headers(
            source=source,
            source_id=source_id,
            source_message_id=message_id,
            received_at_ms=1,
            tenant=p.tenant_id,
        )
        records.append(
            (p.tenant_id.encode(), p.body, headers + [(k, v.encode()) for k, v in p.attributes.items()])
        )
    ids = [dict(h)["source_message_id"] for _, _, h in records]
    assert len(set(ids)) < len(ids) / 2  # the same ids over and over, across tenants and sources
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
            canonical += asyncio.run(read_topic(stack.bootstrap, prefix + topic, count, wait=30))
    finally:
        worker.stop()
    per_tenant = collections.Counter(r.key for r in canonical)
    assert per_tenant == collections.Counter(e.tenant_id.encode() for e in expected), worker.log_tail()
    assert len({r.headers["ce_id"] for r in canonical}) == len(expected)
