"""The compliance archive on a real worker, read back as a compliance officer reads the bucket.

Simulator traffic of two tenants, normalized by the real normalizer, is repartitioned in event-time order
into the conversation-events topic (the state stage's input; the route agent is covered by the state tests).
Three policies, set with `carryover archive policy set`: a fixed 10-minute window with every format, a cron
schedule in America/New_York (JSON Lines) and one in Europe/London (EML), all to S3 on moto with Object Lock.

What is checked, from the bucket alone: every window from the policy's first to the last with traffic has a
manifest; the chain verifies; each manifest has one offset range per partition and each partition's parts
follow each other without a gap; every listed file is there with its SHA-256, locked in COMPLIANCE mode and
encrypted with the tenant's KMS key; and every file is byte for byte what the pure core renders from the same
events and the conversation's state at the close. Then a kill -9 of the worker in the middle of the closes and
a restart: the delivered objects are byte-identical to the clean run's, none has a second version.
"""

from __future__ import annotations

import asyncio
import collections
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from app import topics as topic_names
from app.archive import render
from app.archive.manifest import Manifest, manifest_key, object_key, sha256_hex, verify_chain
from app.archive.parts import ManifestPart, parts_prefix
from app.archive.policy import ArchivePolicy, Window, policy_id, window_of, windows_between
from app.archive.window import conversation_window
from app.catalog.model import default_catalog
from app.catalog.provision import apply_topics
from app.catalog.wire import frame, unframe
from app.crypto.keyfile import LocalKeyFileProvider
from app.crypto.keyring import Keyring
from app.state.conversation import ConversationState
from app.state.facts import split_key
from app.state.routing import CANONICAL_TOPIC_HEADER, DictHoldBook, decode_envelope, decode_fact, route_record
from tests.support.cli import carryover
from tests.support.kafka import Record, produce_records, read_topic
from tests.support.stack import RunningStack
from tests.support.state import CanonicalTraffic, canonical_traffic, get_json
from tests.support.worker import Worker, worker_env

pytestmark = pytest.mark.e2e

MIN = 60_000
PARTITIONS = default_catalog().topics[topic_names.CONVERSATION_EVENTS].partitions
BUCKET = "archive-" + uuid.uuid4().hex[:10]
MADE: set[str] = set()


@dataclass
class Traffic:
    """The run's inputs: tenants, key file, canonical traffic, repartitioned records, policies."""

    key_file: Path
    traffic: CanonicalTraffic
    users: list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]
    events: list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]
    last_event_ms: int
    policies: list[ArchivePolicy]
    late: list[tuple[str, str]]
    """(conversation id, message id) of messages of the first Rates window written after the traffic: late."""


def policies_for(tenants: list[str], since_ms: int, prefix: str) -> list[ArchivePolicy]:
    """Three policies (two tenants, two time zones, three formats) to ``s3://BUCKET/prefix``."""
    destination = f"s3://{BUCKET}/{prefix}"
    raw = [
        {
            "tenant": tenants[0],
            "business_unit": "Rates",
            "schedule": {"every_seconds": 600},
            "formats": ["actiance_xml", "eml", "jsonl"],
        },
        {
            "tenant": tenants[0],
            "business_unit": "FX",
            "schedule": {"cron": "*/15 * * * *", "time_zone": "America/New_York"},
            "formats": ["jsonl"],
        },
        {
            "tenant": tenants[1],
            "business_unit": "Credit",
            "schedule": {"cron": "0,20,40 * * * *", "time_zone": "Europe/London"},
            "formats": ["eml"],
            "redact_suppressed": True,
        },
    ]
    return [
        ArchivePolicy.from_dict(
            {
                **r,
                "destination": destination,
                "retention_days": 30,
                "grace_seconds": 120,
                "since_ms": since_ms,
            }
        )
        for r in raw
    ]


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Traffic:
    """~1200 publications starting 60-80 minutes ago, aligned on 20 minutes, repartitioned in time order."""
    tmp = tmp_path_factory.mktemp("archive-traffic")
    tag = uuid.uuid4().hex[:5]
    tenants = [f"ar{tag}-a", f"ar{tag}-b"]
    now = int(time.time() * 1000)
    start = (now - 60 * MIN) // (20 * MIN) * (20 * MIN)
    key_file, made = canonical_traffic(tmp, tenants, 1200, seed=12, window=256, start_ms=start)
    users = list(made.records[topic_names.USERS])
    merged = []
    for topic in topic_names.CONVERSATION_SOURCES:
        for position, (_key, value, headers) in enumerate(made.records[topic]):
            fact = decode_fact(topic, value)
            merged.append(((fact.time_ms if fact else 0), position, topic, value, headers))
    merged.sort(key=lambda item: (item[0], topic_names.CONVERSATION_SOURCES.index(item[2]), item[1]))
    holds = DictHoldBook()
    events = []
    for _t, _p, topic, value, headers in merged:
        for forward in route_record(topic, value, headers, holds).forwards:
            events.append((forward.key.encode(), forward.value, forward.headers))
    last = max(item[0] for item in merged)
    policies = policies_for(tenants, start, "clean")
    late = late_messages(made, events, policies[0], tenants[0])
    events += [record for record, _ in late]
    return Traffic(key_file, made, users, events, last, policies, [ids for _, ids in late])


def late_messages(
    made: CanonicalTraffic,
    events: list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]],
    rates: ArchivePolicy,
    tenant: str,
) -> list[tuple[tuple[bytes | None, bytes, list[tuple[str, bytes]]], tuple[str, str]]]:
    """Copies (new event and message ids, same time) of messages of two conversations archived for Rates in
    its first window: written after the traffic, they come after that window closed."""
    first = expected_windows(rates, rates.since_ms or 0)[0]
    by_conversation: dict[str, list[Any]] = collections.defaultdict(list)
    for key, value, headers in events:
        by_conversation[(key or b"").decode()].append(
            decode_envelope(dict(headers)[CANONICAL_TOPIC_HEADER].decode(), value)
        )
    out: list[tuple[tuple[bytes | None, bytes, list[tuple[str, bytes]]], tuple[str, str]]] = []
    for key, value, headers in events:
        topic = dict(headers)[CANONICAL_TOPIC_HEADER].decode()
        if topic != topic_names.MESSAGES or len(out) == 2:
            continue
        envelope = decode_envelope(topic, value)
        if envelope.WhichOneof("event") != "message_sent":
            continue
        sent = envelope.message_sent
        tenant_of, conversation = split_key(key.decode())  # type: ignore[union-attr]
        if tenant_of != tenant or not first.contains(sent.event_time.ToMilliseconds()):
            continue
        if any(conversation == c for _, (c, _m) in out):
            continue
        state = made.states[(tenant_of, conversation)]
        if conversation_window(state, made.directory, "Rates", first, by_conversation[key.decode()]) is None:  # type: ignore[union-attr]
            continue
        sent.event_id += "-late"
        sent.message_id += "-late"
        framed = unframe(value)
        copy = frame(framed.schema_id, framed.message_indexes, envelope.SerializeToString())
        out.append(((key, copy, headers), (conversation, sent.message_id)))
    assert len(out) == 2, "the traffic has no two Rates conversations in the first window"
    return out


def make_bucket(stack: RunningStack, tenants: list[str]) -> None:
    """The bucket (Object Lock on) and each tenant's KMS key alias, once."""
    if BUCKET in MADE:
        return
    MADE.add(BUCKET)
    s3 = boto3.client("s3", endpoint_url=stack.aws_endpoint)
    kms = boto3.client("kms", endpoint_url=stack.aws_endpoint)
    s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    for tenant in tenants:
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=f"alias/carryover-archive-{tenant}", TargetKeyId=key_id)


def expected_windows(policy: ArchivePolicy, last_event_ms: int) -> list[Window]:
    """The policy's windows from its first to the one of the last event."""
    assert policy.since_ms is not None
    return list(windows_between(policy, policy.since_ms, window_of(policy, last_event_ms).end_ms))


def in_prefix(policy: ArchivePolicy, prefix: str) -> ArchivePolicy:
    """``policy`` delivering to ``s3://BUCKET/prefix``."""
    return ArchivePolicy.from_dict({**policy.to_dict(), "destination": f"s3://{BUCKET}/{prefix}"})


@dataclass
class Run:
    """One worker run: its env, worker, bucket prefix, and what it delivered (key -> bytes)."""

    env: dict[str, str]
    prefix: str
    policies: list[ArchivePolicy]
    objects: dict[str, bytes]
    seconds: float
    killed_with: int = -1
    """Objects delivered when the worker was killed (-1: not killed)."""


def bucket_keys(s3: Any, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/"):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def complete(s3: Any, run_prefix: str, policies: list[ArchivePolicy], last_event_ms: int) -> bool:
    """True when the manifest of the last window with traffic of every policy is in the bucket."""
    for policy in policies:
        window = expected_windows(policy, last_event_ms)[-1]
        key = f"{run_prefix}/{manifest_key(policy.tenant, policy.business_unit, window)}"
        try:
            s3.head_object(Bucket=BUCKET, Key=key)
        except s3.exceptions.ClientError:
            return False
    return True


def archive_run(
    stack: RunningStack,
    tmp_path: Path,
    data: Traffic,
    prefix: str,
    *,
    kill_after_files: int = 0,
    during_rebalance: bool = False,
) -> Run:
    """Set the policies (CLI), start a worker, write the traffic, wait for every manifest.

    ``kill_after_files``: once that many conversation files are delivered, kill -9 the worker and start it
    again; with ``during_rebalance``, start a second worker instead and kill the first as soon as the second
    joins the group (the rebalance under way), so the second takes every partition over."""
    tenants = sorted({p.tenant for p in data.policies})
    make_bucket(stack, tenants)
    env = worker_env(
        stack,
        tmp_path,
        CARRYOVER_ROLES="state,archive",
        CARRYOVER_KEY_FILE=str(data.key_file),
        CARRYOVER_ARCHIVE_IDLE_SECONDS="3",
        CARRYOVER_RECOVERY_DELAY_SECONDS="0.5",
    )
    topic_prefix = env["CARRYOVER_TOPIC_PREFIX"]
    assert asyncio.run(
        apply_topics(stack.bootstrap, default_catalog(), dry_run=False, prefix=topic_prefix)
    ).ok
    policies = [in_prefix(p, prefix) for p in data.policies]
    for i, policy in enumerate(policies):
        path = tmp_path / f"policy-{prefix}-{i}.json"
        path.write_bytes(policy.to_json())
        done = carryover(["archive", "policy", "set", str(path)], env)
        assert done.returncode == 0, done.stderr
    s3 = boto3.client("s3", endpoint_url=stack.aws_endpoint)
    log_path = tmp_path / f"worker-{prefix}.log"
    # the traffic is an hour old: written before the worker starts, so no idle tick (wall clock) comes first
    asyncio.run(produce_records(stack.bootstrap, topic_prefix + topic_names.USERS, data.users))
    events_topic = topic_prefix + topic_names.CONVERSATION_EVENTS
    asyncio.run(produce_records(stack.bootstrap, events_topic, data.events))
    began = time.monotonic()
    worker = Worker(env=dict(env), log_path=log_path).start()
    workers = [worker]
    killed_with = -1
    try:
        deadline = time.monotonic() + 150
        while not complete(s3, prefix, policies, data.last_event_ms):
            lag = get_json(worker.web_port, "/lag.json", None) if time.monotonic() >= deadline else None
            assert time.monotonic() < deadline, (worker.log_tail(), lag)
            assert worker.proc is not None and worker.proc.poll() is None, worker.log_tail()
            if kill_after_files and killed_with < 0:
                files = [k for k in bucket_keys(s3, prefix) if "/manifests/" not in k]
                if len(files) >= kill_after_files:
                    worker = join_then_kill(worker, env, tmp_path) if during_rebalance else restart(worker)
                    workers.append(worker)
                    killed_with = len(bucket_keys(s3, prefix))
                    continue
            time.sleep(0.05 if kill_after_files and killed_with < 0 else 0.5)
        seconds = time.monotonic() - began
    finally:
        for each in workers:
            each.kill()
    for each in workers:
        text = each.log_path.read_text(errors="replace")
        assert "Traceback" not in text, text[-4000:]
    objects = {
        k[len(prefix) + 1 :]: s3.get_object(Bucket=BUCKET, Key=k)["Body"].read()
        for k in bucket_keys(s3, prefix)
    }
    return Run(env, prefix, policies, objects, seconds, killed_with)


def restart(worker: Worker) -> Worker:
    """kill -9 ``worker`` and start it again on the same data directory."""
    worker.kill()
    return Worker(env=dict(worker.env), log_path=worker.log_path).start()


def join_then_kill(worker: Worker, env: dict[str, str], tmp_path: Path) -> Worker:
    """Start a second worker and kill -9 ``worker`` once the second asks to join the group (rebalancing)."""
    other_env = {**env, "CARRYOVER_DATA_DIR": str(tmp_path / "worker-b-data")}
    other = Worker(env=other_env, log_path=worker.log_path.with_name(worker.log_path.stem + "-b.log"))
    starting = threading.Thread(target=other.start, daemon=True)
    starting.start()
    deadline = time.monotonic() + 60
    log = other.log_path
    while not (log.exists() and "joining group" in log.read_text(errors="replace")):
        assert time.monotonic() < deadline and starting.is_alive(), "the second worker never joined the group"
        time.sleep(0.02)
    worker.kill()
    starting.join(90)
    assert other.proc is not None and other.proc.poll() is None, other.log_tail()
    return other


@pytest.fixture(scope="module")
def clean_run(
    stack: RunningStack, tmp_path_factory: pytest.TempPathFactory, traffic: Traffic
) -> Iterator[Run]:
    """The crash-free run."""
    yield archive_run(stack, tmp_path_factory.mktemp("archive-clean"), traffic, "clean")


def all_manifests(run: Run) -> list[Manifest]:
    """Every manifest the run delivered."""
    return [
        Manifest.from_json(v) for k, v in run.objects.items() if "/manifests/" in k and ".parts/" not in k
    ]


def windows_of_run(run: Run, data: Traffic) -> dict[tuple[str, Window], Manifest]:
    """Every expected manifest of the run, read from the run's objects (KeyError when one is missing)."""
    out = {}
    for policy in run.policies:
        for window in expected_windows(policy, data.last_event_ms):
            raw = run.objects[manifest_key(policy.tenant, policy.business_unit, window)]
            out[(policy_id(policy.tenant, policy.business_unit), window)] = Manifest.from_json(raw)
    return out


def reference_files(
    run: Run, data: Traffic, manifests: dict[tuple[str, Window], Manifest]
) -> dict[str, bytes]:
    """What the pure core renders for every manifest's window, from the events of each partition up to the
    offset the window closed at, and the conversation's state there (read back from the topic)."""
    topic = run.env["CARRYOVER_TOPIC_PREFIX"] + topic_names.CONVERSATION_EVENTS
    records = asyncio.run(read_topic(_bootstrap(run), topic, expect=len(data.events), settle=1.0))
    by_partition: dict[int, list[Record]] = collections.defaultdict(list)
    for record in records:
        by_partition[record.partition].append(record)
    closes: dict[int, list[tuple[int, ArchivePolicy, Window]]] = collections.defaultdict(list)
    policies = {policy_id(p.tenant, p.business_unit): p for p in run.policies}
    for (pid, window), manifest in manifests.items():
        for offsets in manifest.offsets:
            closes[offsets.partition].append((offsets.last_offset, policies[pid], window))
    keys = Keyring.static(asyncio.run(LocalKeyFileProvider(data.key_file).load()))
    directory = data.traffic.directory
    expected: dict[str, bytes] = {}
    for partition, rows in by_partition.items():
        rows.sort(key=lambda r: r.offset)
        pending = sorted(closes[partition], key=lambda c: c[0])
        states: dict[str, ConversationState] = {}
        events: dict[str, list[Any]] = collections.defaultdict(list)
        for record in rows:
            if CANONICAL_TOPIC_HEADER in record.headers and record.key:
                key = record.key.decode()
                canonical = record.headers[CANONICAL_TOPIC_HEADER].decode()
                fact = decode_fact(canonical, record.value)
                if fact is not None and fact.scope != "user":
                    state = states.setdefault(key, ConversationState(*split_key(key), window=256))
                    state.apply(fact)
                    events[key].append(decode_envelope(canonical, record.value))
            while pending and pending[0][0] == record.offset:
                _, policy, window = pending.pop(0)
                for key, state in states.items():
                    if state.tenant != policy.tenant:
                        continue
                    cw = conversation_window(state, directory, policy.business_unit, window, events[key])
                    if cw is None:
                        continue
                    for fmt in policy.formats:
                        rendered = render(fmt, cw, keys, redact_suppressed=policy.redact_suppressed)
                        name = object_key(
                            policy.tenant, policy.business_unit, fmt, window, cw.conversation_id
                        )
                        expected[name] = rendered.data
        assert not pending, f"partition {partition}: closes at offsets never read {pending[:3]}"
    return expected


def verify(run: Run, policy: ArchivePolicy, data: Traffic) -> Any:
    """`carryover archive verify` of the policy's windows up to the last one with traffic."""
    last = expected_windows(policy, data.last_event_ms)[-1]
    until = str(last.end_ms + policy.grace_ms)
    return carryover(
        ["archive", "verify", "--tenant", policy.tenant, "--bu", policy.business_unit, "--until", until]
        + ["--recompute"],
        run.env,
    )


def _bootstrap(run: Run) -> str:
    return run.env["CARRYOVER_BROKER"].split("://", 1)[1]


def test_the_bucket_holds_every_window_rendered_like_the_reference_and_the_chain_verifies(
    stack: RunningStack, traffic: Traffic, clean_run: Run
) -> None:
    manifests = windows_of_run(clean_run, traffic)
    for policy in clean_run.policies:
        pid = policy_id(policy.tenant, policy.business_unit)
        chain = [manifests[(pid, w)] for w in expected_windows(policy, traffic.last_event_ms)]
        assert verify_chain(chain, first_previous_sha256="") == [], pid
        for manifest in chain:
            assert sorted(o.partition for o in manifest.offsets) == list(range(PARTITIONS))
            parts = [
                ManifestPart.from_json(clean_run.objects[k])
                for k in sorted(clean_run.objects)
                if k.startswith(parts_prefix(policy.tenant, policy.business_unit, manifest.window))
            ]
            assert len(parts) == PARTITIONS
        for before, after in zip(chain, chain[1:], strict=False):  # each partition's parts follow each other
            ends = {o.partition: o.last_offset for o in before.offsets}
            for part_key_ in [k for k in clean_run.objects if ".parts/" in k and after.window.label in k]:
                part = ManifestPart.from_json(clean_run.objects[part_key_])
                if part.business_unit == policy.business_unit and part.tenant == policy.tenant:
                    assert part.after_offset == ends[part.partition]
    listed = {f.key: f for m in manifests.values() for f in m.files}
    expected = reference_files(clean_run, traffic, manifests)
    assert set(listed) == set(expected) and len(expected) > 30, (len(listed), len(expected))
    for key, data in expected.items():
        assert clean_run.objects[key] == data, key
        assert sha256_hex(data) == listed[key].sha256 and len(data) == listed[key].size
    first_rates = expected_windows(clean_run.policies[0], traffic.last_event_ms)[0]
    supplements = {f.key: f for m in all_manifests(clean_run) for f in m.supplements}
    for conversation, message_id in traffic.late:  # late messages: a supplement with a later window
        (found,) = [
            f
            for f in supplements.values()
            if f.conversation_id == conversation and f.format == "jsonl" and "/bu=Rates/" in f.key
        ]
        assert found.original_window == first_rates.label
        data = clean_run.objects[found.key]
        assert sha256_hex(data) == found.sha256 and message_id.encode() in data
        assert message_id.encode() not in clean_run.objects[found.original_key]  # delivered objects stay
    formats = collections.Counter(f.format for f in listed.values())
    assert set(formats) == {"actiance_xml", "eml", "jsonl"}, formats
    s3 = boto3.client("s3", endpoint_url=stack.aws_endpoint)
    for key in sorted(listed)[:: max(1, len(listed) // 20)]:  # a sample: lock, retention, tenant key
        head = s3.head_object(Bucket=BUCKET, Key=f"{clean_run.prefix}/{key}")
        assert head["ObjectLockMode"] == "COMPLIANCE" and head["ServerSideEncryption"] == "aws:kms"
        tenant = key.split("/")[0].removeprefix("tenant=")
        assert (
            head["SSEKMSKeyId"].endswith(f"alias/carryover-archive-{tenant}") or "key/" in head["SSEKMSKeyId"]
        )
    print(
        f"\nclean run: {len(listed)} files, {len(manifests)} manifests in {clean_run.seconds:.1f}s; "
        f"formats {dict(formats)}"
    )


def test_policy_commands_list_delete_and_refuse_invalid_policies(
    clean_run: Run, tmp_path: Path, traffic: Traffic
) -> None:
    env = clean_run.env
    listed = carryover(["archive", "policy", "list"], env)
    assert listed.returncode == 0, listed.stderr
    assert sorted(json.loads(line)["business_unit"] for line in listed.stdout.splitlines()) == [
        "Credit",
        "FX",
        "Rates",
    ]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**clean_run.policies[0].to_dict(), "formats": ["pdf"], "retention_days": 0}))
    refused = carryover(["archive", "policy", "set", str(bad)], env)
    assert refused.returncode == 2
    assert (
        "format 'pdf' is unknown" in refused.stderr and "retention_days 0 is out of range" in refused.stderr
    )
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({**clean_run.policies[0].to_dict(), "business_unit": "Ops"}))
    assert carryover(["archive", "policy", "set", str(extra)], env).returncode == 0
    tenant = clean_run.policies[0].tenant
    assert carryover(["archive", "policy", "delete", tenant, "Ops"], env).returncode == 0
    again = carryover(["archive", "policy", "delete", tenant, "Ops"], env)
    assert again.returncode == 1 and "no policy" in again.stderr
    assert len(carryover(["archive", "policy", "list"], env).stdout.splitlines()) == 3
    verified = verify(clean_run, clean_run.policies[0], traffic)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    unknown = carryover(["archive", "verify", "--tenant", tenant, "--bu", "Ops"], env)
    assert unknown.returncode == 2 and "no policy" in unknown.stderr


@pytest.mark.parametrize("how", ["restart", "rebalance"])
def test_kill_9_mid_close_delivers_the_same_bytes_and_overwrites_nothing(
    stack: RunningStack, tmp_path: Path, traffic: Traffic, clean_run: Run, how: str
) -> None:
    """kill -9 of the worker mid-close, then the same worker again (restart) or a second worker that joined
    the group just before (rebalance): byte-identical to the clean run, nothing written twice."""
    rebalance = how == "rebalance"  # the second worker takes seconds to start: ask for it at the first file
    crashed = archive_run(
        stack,
        tmp_path,
        traffic,
        f"crashed-{how}",
        kill_after_files=1 if rebalance else 3,
        during_rebalance=rebalance,
    )
    manifests = windows_of_run(crashed, traffic)
    assert 0 < crashed.killed_with < len(crashed.objects), "the kill came after the archive was complete"
    files = {k: v for k, v in crashed.objects.items() if "/manifests/" not in k}
    clean_files = {k: v for k, v in clean_run.objects.items() if "/manifests/" not in k}
    listed = {f.key for m in manifests.values() for f in m.files}
    listed |= {f.key for m in all_manifests(crashed) for f in m.supplements}
    assert set(listed) <= set(files)
    differing = sorted(k for k in listed if files[k] != clean_files.get(k))  # checked last, below
    assert set(listed) == {f.key for m in windows_of_run(clean_run, traffic).values() for f in m.files} | {
        f.key for m in all_manifests(clean_run) for f in m.supplements
    }
    for policy in crashed.policies:
        pid = policy_id(policy.tenant, policy.business_unit)
        chain = [manifests[(pid, w)] for w in expected_windows(policy, traffic.last_event_ms)]
        assert verify_chain(chain, first_previous_sha256="") == []
    s3 = boto3.client("s3", endpoint_url=stack.aws_endpoint)
    versions: collections.Counter[str] = collections.Counter()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET, Prefix=f"crashed-{how}/"):
        versions.update(v["Key"] for v in page.get("Versions", []))
    assert versions and max(versions.values()) == 1  # nothing was written twice
    for policy in crashed.policies:  # what a compliance officer runs
        verified = verify(crashed, policy, traffic)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "missing 0, altered 0, chain breaks 0, incomplete 0, not locked 0" in verified.stdout
        assert "recomputed from the log: events missing 0, duplicated 0" in verified.stdout
        print(f"archive verify {policy.business_unit}: {verified.stdout.strip()}")
    log = "".join(p.read_text(errors="replace") for p in tmp_path.glob(f"worker-crashed-{how}*.log"))
    if differing:  # show what differs, then fail
        import difflib  # noqa: PLC0415

        first = differing[0]
        diff = difflib.unified_diff(
            clean_files.get(first, b"").decode(errors="replace").splitlines(),
            files[first].decode(errors="replace").splitlines(),
            lineterm="",
        )
        pytest.fail(f"{len(differing)} file(s) differ from the clean run; {first}:\n" + "\n".join(diff))
    assert "exists with other bytes" not in log  # the re-run rendered the same bytes: no conflict
    assert "resumed after a gap" not in log
    print(
        f"\ncrash run ({how}): killed with {crashed.killed_with} objects delivered, {len(listed)} files "
        "byte-identical "
        f"to the clean run, {crashed.seconds:.1f}s"
    )
