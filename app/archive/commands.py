"""``carryover archive policy set / list / delete``: archive policies in ``carryover.config.archive``.

The command writes the compacted topic directly (key :func:`app.archive.policy.policy_id`, value the policy's
JSON, a tombstone to delete), like ``carryover topics apply`` and ``carryover replay`` use Kafka directly: the
topic is the policies' source of truth and every worker follows it, so no worker has to be up to change a
policy, and who may change policies is the topic's write ACL. A policy is validated before it is written
(:class:`app.archive.policy.PolicyError` lists every problem with its fix); workers validate again on read
and skip, with a warning, a record that is not a valid policy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app import local_broker
from app import topics as topic_names
from app.archive.closing import PolicyBook
from app.archive.manifest import Manifest, ManifestFile, SupplementFile, manifest_key
from app.archive.parts import ManifestPart, parts_prefix
from app.archive.policy import ArchivePolicy, PolicyError, policy_id, windows_between
from app.archive.sinks import S3Sink, open_sinks
from app.archive.verify import ObjectFacts, VerifyReport, archived_counts, compare_counts, verify_objects
from app.archive.window import conversation_window
from app.catalog.model import default_catalog
from app.settings import Settings
from app.state.conversation import ConversationState
from app.state.directory import DictDirectory
from app.state.facts import split_key
from app.state.routing import CANONICAL_TOPIC_HEADER, StateInputError, decode_envelope, decode_fact


def _topic(settings: Settings) -> str:
    return settings.topic_prefix + topic_names.ARCHIVE_POLICIES


async def read_policies(settings: Settings) -> PolicyBook:
    """Every policy in the topic now (read from the beginning to its end)."""
    book = PolicyBook()
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        numbers = consumer.partitions_for_topic(_topic(settings)) or set()
        if not numbers:
            await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
            numbers = consumer.partitions_for_topic(_topic(settings)) or set()
        tps = [TopicPartition(_topic(settings), p) for p in sorted(numbers)]
        if not tps:
            return book
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await local_broker.corrected_end_offsets(consumer, tps)
        remaining = {tp: end for tp, end in ends.items() if end > 0}
        while remaining:
            batches = await consumer.getmany(timeout_ms=1000)
            for tp, messages in batches.items():
                for message in messages:
                    book.apply(message.key, message.value, int(message.timestamp))
                if messages and tp in remaining and messages[-1].offset + 1 >= remaining[tp]:
                    del remaining[tp]
        return book
    finally:
        await consumer.stop()


async def _write(settings: Settings, key: str, value: bytes | None) -> None:
    from app.catalog.provision import apply_topics  # noqa: PLC0415

    await apply_topics(
        settings.bootstrap_servers,
        default_catalog(),
        dry_run=False,
        prefix=settings.topic_prefix,
        replication_factor=settings.topic_replicas,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        **local_broker.producer_options(settings.local_broker),
    )
    await producer.start()
    try:
        await producer.send_and_wait(_topic(settings), value, key=key.encode())
    finally:
        await producer.stop()


def _since_ms(text: str) -> int:
    if text.isdigit():
        return int(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"--since {text!r} has no time zone: add Z or +HH:MM")
    return int(moment.timestamp() * 1000)


def cmd_policy_set(args: argparse.Namespace, settings: Settings) -> int:
    """Validate the policy file and write it; 0 when written, 2 when invalid."""
    try:
        text = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8").read()  # noqa: SIM115
    except OSError as exc:
        print(f"carryover archive policy set: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    try:
        raw = json.loads(text)
        if isinstance(raw, dict) and args.since is not None:
            raw["since_ms"] = _since_ms(args.since)
        if isinstance(raw, dict) and raw.get("since_ms") is None:
            raw["since_ms"] = int(time.time() * 1000)
        policy = ArchivePolicy.from_dict(raw)
    except json.JSONDecodeError as exc:
        print(f"carryover archive policy set: {args.file} is not JSON ({exc})", file=sys.stderr)
        return 2
    except ValueError as exc:  # PolicyError is one; --since too
        print(f"carryover archive policy set: {exc}", file=sys.stderr)
        return 2
    asyncio.run(_write(settings, policy_id(policy.tenant, policy.business_unit), policy.to_json()))
    print(f"archive policy {policy_id(policy.tenant, policy.business_unit)} written")
    return 0


def cmd_policy_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print every policy (one JSON object per line), optionally of one tenant."""
    book = asyncio.run(read_policies(settings))
    for active in book.all():
        if args.tenant and active.policy.tenant != args.tenant:
            continue
        print(json.dumps({**active.policy.to_dict(), "since_ms": active.since_ms}, sort_keys=True))
    return 0


def cmd_policy_delete(args: argparse.Namespace, settings: Settings) -> int:
    """Delete the policy of (tenant, business unit); 1 when there is none."""
    pid = policy_id(args.tenant, args.business_unit)
    book = asyncio.run(read_policies(settings))
    if book.get(pid) is None:
        print(
            f"carryover archive policy delete: no policy for {pid}; "
            "`carryover archive policy list` shows them",
            file=sys.stderr,
        )
        return 1
    asyncio.run(_write(settings, pid, None))
    print(f"archive policy {pid} deleted (delivered objects stay, under their retention)")
    return 0


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Check the chain, files, completeness and locks of a (tenant, business unit); 0 when all are fine."""
    report = asyncio.run(_verify(args, settings))
    if report is None:
        return 2
    print("\n".join(report.lines()))
    return 0 if report.ok and report.windows else 1


async def _verify(args: argparse.Namespace, settings: Settings) -> VerifyReport | None:
    book = await read_policies(settings)
    active = book.get(policy_id(args.tenant, args.bu))
    if active is None:
        print(f"carryover archive verify: no policy for {args.tenant}/{args.bu}", file=sys.stderr)
        return None
    policy = active.policy
    first = active.first_window
    until = _since_ms(args.until) if args.until else int(time.time() * 1000)
    async with open_sinks(settings.aws_endpoint_url, settings.aws_region, "") as sinks:
        sink = sinks.for_destination(policy.parsed_destination)
        manifests: list[Manifest] = []
        parts: dict[str, list[ManifestPart]] = {}
        objects: dict[str, ObjectFacts] = {}
        missing_manifests: list[str] = []
        for window in windows_between(policy, first.start_ms, until):
            raw = await sink.get(manifest_key(policy.tenant, policy.business_unit, window))
            if raw is None:
                if window.end_ms + policy.grace_ms <= until:
                    missing_manifests.append(window.label)
                break
            manifest = Manifest.from_json(raw)
            manifests.append(manifest)
            keys = await sink.list(parts_prefix(policy.tenant, policy.business_unit, window))
            parts[window.label] = [ManifestPart.from_json(await sink.get(k) or b"") for k in keys]
            listed_files: list[ManifestFile | SupplementFile] = [*manifest.files, *manifest.supplements]
            for listed in listed_files:
                data = await sink.get(listed.key)
                mode, retain = (None, None)
                if isinstance(sink, S3Sink) and data is not None:
                    mode, retain = await sink.lock(listed.key)
                objects[listed.key] = ObjectFacts(data, mode, retain)
    partitions = default_catalog().topics[topic_names.CONVERSATION_EVENTS].partitions
    now = datetime.now(UTC) if policy.parsed_destination.scheme == "s3" else None
    report = verify_objects(
        manifests, parts, objects, partitions=partitions, now=now, missing_manifests=missing_manifests
    )
    if args.recompute:
        await _recompute(settings, policy, manifests, report)
    return report


async def _recompute(
    settings: Settings, policy: ArchivePolicy, manifests: list[Manifest], report: VerifyReport
) -> None:
    """Count every archived event type per conversation again from the log, without the archive's state."""
    states: dict[str, ConversationState] = {}
    events: dict[str, list[Any]] = {}
    directory = DictDirectory()

    def on_event(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        topic = next((v.decode() for k, v in headers if k == CANONICAL_TOPIC_HEADER), "")
        if not topic or not key:
            return  # a tick, or not a repartitioned event
        try:
            fact = decode_fact(topic, value)
        except StateInputError:
            return
        if fact is None or fact.scope == "user" or fact.tenant != policy.tenant:
            return
        name = key.decode()
        state = states.get(name)
        if state is None:
            state = states[name] = ConversationState(*split_key(name), window=settings.state_dedupe_window)
        state.apply(fact)
        events.setdefault(name, []).append(decode_envelope(topic, value))

    def on_user(_key: bytes | None, value: bytes, _headers: list[tuple[str, bytes]]) -> None:
        try:
            fact = decode_fact(topic_names.USERS, value)
        except StateInputError:
            return
        if fact is not None and fact.tenant == policy.tenant:
            directory.apply(fact)

    await _read_log(settings, settings.topic_prefix + topic_names.USERS, on_user)
    await _read_log(settings, settings.topic_prefix + topic_names.CONVERSATION_EVENTS, on_event)
    supplements = [s for m in manifests for s in m.supplements]
    for manifest in manifests:
        expected: dict[str, dict[str, int]] = {}
        for name, state in states.items():
            cw = conversation_window(state, directory, policy.business_unit, manifest.window, events[name])
            if cw is not None:
                expected[cw.conversation_id] = cw.event_counts()
        compare_counts(report, manifest.window.label, expected, archived_counts(manifest, supplements))


async def _read_log(
    settings: Settings, topic: str, handle: Callable[[bytes | None, bytes, list[tuple[str, bytes]]], None]
) -> None:
    """Hand every record of ``topic`` (every partition, from the beginning to its end now) to ``handle``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            return
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await local_broker.corrected_end_offsets(consumer, tps)
        remaining = {tp: end for tp, end in ends.items() if end > 0}
        while remaining:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for tp, messages in batches.items():
                for message in messages:
                    if tp in remaining and message.offset < remaining[tp]:
                        handle(message.key, message.value or b"", [(k, bytes(v)) for k, v in message.headers])
                if messages and tp in remaining and messages[-1].offset + 1 >= remaining[tp]:
                    del remaining[tp]
    finally:
        await consumer.stop()


def add_archive_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``carryover archive ...`` to the CLI."""
    archive = sub.add_parser("archive", help="the compliance archive: policies")
    archive_sub = archive.add_subparsers(dest="archive_command", required=True)
    policy = archive_sub.add_parser("policy", help="archive policies per (tenant, business unit)")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True)
    set_ = policy_sub.add_parser("set", help="validate a policy (JSON file, - for stdin) and write it")
    set_.add_argument("file")
    set_.add_argument(
        "--since",
        help="archive from the window containing this instant (ISO 8601 with zone, or epoch ms); default: "
        "the policy's since_ms, else now",
    )
    set_.set_defaults(handler=cmd_policy_set)
    list_ = policy_sub.add_parser("list", help="print every policy, one JSON object per line")
    list_.add_argument("--tenant", help="only this tenant's policies")
    list_.set_defaults(handler=cmd_policy_list)
    delete = policy_sub.add_parser("delete", help="delete the policy of a tenant's business unit")
    delete.add_argument("tenant")
    delete.add_argument("business_unit")
    delete.set_defaults(handler=cmd_policy_delete)
    verify = archive_sub.add_parser(
        "verify",
        help="check a business unit's archive from its objects: manifest chain, files (missing, altered), "
        "every partition's part, Object Lock; exit 0 only when all are fine",
    )
    verify.add_argument("--tenant", required=True)
    verify.add_argument("--bu", required=True, help="business unit")
    verify.add_argument("--until", help="last instant to check (ISO 8601 or epoch ms; default now)")
    verify.add_argument(
        "--recompute",
        action="store_true",
        help="also count every event type per conversation and window again from the conversation-events "
        "and identity topics (not from the archive's state) and report missing and duplicated events",
    )
    verify.set_defaults(handler=cmd_verify)


__all__ = ["PolicyError", "add_archive_commands", "read_policies"]
