"""Per-conversation state tests: canonical traffic, its reference state, and what a worker answers.

The canonical records are made by the real normalizer from the simulator's legacy traffic; the reference
is what the pure state core makes of them (routed and applied in-process, in order). A worker's answer for
a conversation must equal the reference's answer, field by field.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from app import local_broker
from app import topics as topic_names
from app.crypto.keyfile import LocalKeyFileProvider, generate_key_file
from app.crypto.keyring import Keyring
from app.dev.simulate.traffic import TrafficConfig, TrafficGenerator
from app.normalize.runtime import build_normalizer
from app.settings import load
from app.state.answers import conversation_answer
from app.state.conversation import ConversationState
from app.state.directory import DictDirectory
from app.state.facts import split_key
from app.state.routing import DictHoldBook, decode_fact, route_record
from tests.e2e.test_normalize_end_to_end import staging_record

Record = tuple[bytes | None, bytes, list[tuple[str, bytes]]]


@dataclass
class CanonicalTraffic:
    """Canonical records per topic (in production order) and the reference state they make."""

    records: dict[str, list[Record]] = field(default_factory=lambda: collections.defaultdict(list))
    states: dict[tuple[str, str], ConversationState] = field(default_factory=dict)
    directory: DictDirectory = field(default_factory=DictDirectory)
    forwards: int = 0

    def answers(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The reference answer of every conversation."""
        return {key: conversation_answer(state, self.directory) for key, state in self.states.items()}

    def expected_facts(self) -> int:
        """Every distinct fact the reference states hold (membership, lifecycle, holds, counted)."""
        return sum(sum(state.fact_counts().values()) for state in self.states.values())


def canonical_traffic(
    tmp_path: Path, tenants: list[str], count: int, seed: int, window: int, start_ms: int | None = None
) -> tuple[Path, CanonicalTraffic]:
    """(key file, traffic): ``count`` legacy publications normalized, and their reference state.

    ``start_ms``: event time of the first publication (default: the simulator's).
    """
    key_file = generate_key_file(tmp_path / "keys.json", tenants)
    keys = Keyring.static(asyncio.run(LocalKeyFileProvider(key_file).load()))
    config = TrafficConfig(tenants=tenants, bad_fraction=0.0, seed=seed)
    if start_ms is not None:
        config = TrafficConfig(tenants=tenants, bad_fraction=0.0, seed=seed, start_ms=start_ms)
    publications = TrafficGenerator(config, keys).take(count)
    env = {"CARRYOVER_KEY_FILE": str(key_file), "CARRYOVER_SCHEMA_REGISTRY_URL": "mock://state-test"}
    normalizer = asyncio.run(build_normalizer(load(env)))
    records: dict[str, list[Record]] = collections.defaultdict(list)
    for i, publication in enumerate(publications):
        key, value, headers = staging_record(publication, f"st-{seed}-{i}")
        for out in normalizer.process(key, value, headers, "staging"):
            if out.dead_letter:
                raise AssertionError(f"the simulator's good traffic was dead-lettered: {dict(out.headers)}")
            records[out.topic].append((out.key, out.value, out.headers))
    return key_file, reference(records, window)


def reference(records: dict[str, list[Record]], window: int) -> CanonicalTraffic:
    """What the pure state core makes of ``records`` (each topic in order), routed and applied in-process."""
    traffic = CanonicalTraffic(records=records)
    holds = DictHoldBook()
    for topic, rows in records.items():
        for _key, value, headers in rows:
            if topic == topic_names.USERS:
                fact = decode_fact(topic, value)
                if fact is not None:
                    traffic.directory.apply(fact)
                continue
            for forward in route_record(topic, value, headers, holds).forwards:
                traffic.forwards += 1
                tenant, conversation = split_key(forward.key)
                state = traffic.states.get((tenant, conversation))
                if state is None:
                    state = ConversationState(tenant, conversation, window=window)
                    traffic.states[(tenant, conversation)] = state
                fact = decode_fact(dict(forward.headers)["canonical_topic"].decode(), forward.value)
                assert fact is not None
                state.apply(fact)
    return traffic


def up_to(slices: list[dict[str, list[Record]]], count: int) -> dict[str, list[Record]]:
    """The records of the first ``count`` slices, per topic."""
    joined: dict[str, list[Record]] = collections.defaultdict(list)
    for part in slices[:count]:
        for topic, rows in part.items():
            joined[topic].extend(rows)
    return joined


def split_records(traffic: CanonicalTraffic, parts: int) -> list[dict[str, list[Record]]]:
    """The records of every topic cut into ``parts`` consecutive slices (each topic's order kept)."""
    slices: list[dict[str, list[Record]]] = [{} for _ in range(parts)]
    for topic, records in traffic.records.items():
        size = -(-len(records) // parts)
        for i in range(parts):
            slices[i][topic] = records[i * size : (i + 1) * size]
    return slices


async def produce_canonical(bootstrap: str, prefix: str, records: dict[str, list[Record]]) -> None:
    """Write each topic's records in order, keyed as normalize keys them."""
    from tests.support.kafka import produce_records  # noqa: PLC0415

    for topic, rows in records.items():
        if rows:
            await produce_records(bootstrap, prefix + topic, rows)


async def wait_until_caught_up(
    bootstrap: str, group: str, topics: list[str], wait_seconds: float = 180.0, stable_for: float = 3.0
) -> None:
    """Wait until ``group`` committed up to the end of every partition of ``topics``, and stays there."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await consumer.start()
    await admin.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or [])]
        deadline = time.monotonic() + wait_seconds
        caught_up_since: float | None = None
        behind: dict[TopicPartition, tuple[int, int]] = {}
        while time.monotonic() < deadline:
            ends = await local_broker.corrected_end_offsets(consumer, tps)
            committed = await admin.list_consumer_group_offsets(group, partitions=tps)
            done = {tp: max(committed[tp].offset, 0) if tp in committed else 0 for tp in tps}
            behind = {tp: (done[tp], end) for tp, end in ends.items() if done[tp] < end}
            if behind:
                caught_up_since = None
            elif caught_up_since is None:
                caught_up_since = time.monotonic()
            elif time.monotonic() - caught_up_since >= stable_for:
                return
            await asyncio.sleep(0.5)
        raise TimeoutError(f"group {group} still behind (committed, end): {behind}")
    finally:
        await consumer.stop()
        await admin.close()


def _parsed(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError:
        return body.decode(errors="replace")


def get_json(port: int, path: str, token: str | None) -> tuple[int, Any]:
    """(status, JSON or text) of ``GET path`` on a worker; status 0 when it does not answer."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=20) as resp:
            return int(resp.status), _parsed(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), _parsed(exc.read())
    except OSError as exc:
        return 0, repr(exc)


def conversation_path(tenant: str, conversation_id: str) -> str:
    """The read path of one conversation (ids URL-encoded)."""
    quote = urllib.parse.quote
    return f"/state/conversations/{quote(tenant, safe='')}/{quote(conversation_id, safe='')}"


WORKER_ONLY_FIELDS = ("served_by", "directory_caught_up")


def compare_answers(
    ports: list[int], token: str, expected: dict[tuple[str, str], dict[str, Any]]
) -> dict[str, Any]:
    """Ask the workers (round robin) for every conversation; counts of facts expected, applied and lost."""
    expected_facts = applied = 0
    mismatched: list[str] = []
    served_by: collections.Counter[str] = collections.Counter()
    for i, ((tenant, conversation), want) in enumerate(sorted(expected.items())):
        path, deadline = conversation_path(tenant, conversation), time.monotonic() + 60
        status, got = get_json(ports[i % len(ports)], path, token)
        while status == 503 and time.monotonic() < deadline:  # rebalancing: the answer says retry
            time.sleep(1.0)
            status, got = get_json(ports[i % len(ports)], path, token)
        want_facts = sum(want["facts"].values())
        expected_facts += want_facts
        if status != 200:
            mismatched.append(f"{tenant}/{conversation}: HTTP {status} {got}")
            continue
        served_by[got["served_by"]] += 1
        applied += min(sum(got["facts"].values()), want_facts)
        trimmed = {k: v for k, v in got.items() if k not in WORKER_ONLY_FIELDS}
        if trimmed != want:
            diff = sorted(k for k in want if want[k] != trimmed.get(k))
            mismatched.append(f"{tenant}/{conversation}: fields differ: {diff}")
    return {
        "conversations": len(expected),
        "expected": expected_facts,
        "applied": applied,
        "lost": expected_facts - applied,
        "mismatched": mismatched,
        "served_by": dict(served_by),
    }


def wait_ready(ports: list[int], wait_seconds: float = 120.0, stable_for: float = 3.0) -> None:
    """Wait until every worker answers ``/readyz`` 200, and keeps doing so for ``stable_for`` s."""
    deadline = time.monotonic() + wait_seconds
    since: float | None = None
    answers: dict[int, Any] = {}
    while time.monotonic() < deadline:
        answers = {port: get_json(port, "/readyz", None) for port in ports}
        if all(status == 200 for status, _ in answers.values()):
            since = since or time.monotonic()
            if time.monotonic() - since >= stable_for:
                return
        else:
            since = None
        time.sleep(0.5)
    raise TimeoutError(f"workers not ready: {answers}")
