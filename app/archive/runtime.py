"""The streaming archive in a worker: policy replica, the per-record step, window closes, ticks (glue).

The decisions are pure (:mod:`app.archive.closing`, :mod:`app.archive.window`, the renderers,
:mod:`app.archive.parts`); this module reads Kafka, the state table and the sinks.

* :class:`ArchiveService` (a mode Service started with the worker) reads ``carryover.config.archive``
  from the beginning into a :class:`PolicyBook` (every worker holds every policy, like the user directory),
  opens the S3 client and, every second, writes a tick into each partition of the conversation-events
  topic this worker owns that has been idle for ``CARRYOVER_ARCHIVE_IDLE_SECONDS``.
* :meth:`ArchiveService.on_record` is called by the state agent for every record, after the state applied
  it: the archive's progress of the partition (a table) is updated, and each window the record closes is
  archived before the agent reads on.
* A close re-reads the partition from the window's first event to the closing record (a group-less
  consumer), keeps the records of the window's conversations, builds each conversation's window
  (:func:`app.archive.window.conversation_window`, from the state table and the directory), renders the
  policy's formats, writes each file once, writes the partition's manifest part, and writes the manifest
  when every partition's part is there.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from mode import Service

from app import local_broker
from app.archive import render
from app.archive.closing import Close, PolicyBook, Progress, observe, parse_tick, tick_headers
from app.archive.manifest import (
    Manifest,
    ManifestFile,
    SupplementFile,
    manifest_key,
    object_key,
    sha256_hex,
    supplement_key,
)
from app.archive.parts import ManifestPart, manifest_from_parts, part_key, parts_prefix
from app.archive.policy import Window, window_of
from app.archive.records import DecryptionKeys
from app.archive.sinks import ObjectConflict, Sink, Sinks, open_sinks
from app.archive.window import conversation_window
from app.state.conversation import ConversationState
from app.state.directory import Directory
from app.state.facts import conversation_key
from app.state.routing import CANONICAL_TOPIC_HEADER, StateInputError, decode_envelope, decode_fact

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]


@dataclass
class ArchiveStats:
    """Counters of the archive in this worker."""

    records: int = 0
    ticks_sent: int = 0
    windows_closed: int = 0
    files_written: int = 0
    files_identical: int = 0
    conflicts: int = 0
    parts_written: int = 0
    manifests_written: int = 0
    late_events: int = 0
    reread_records: int = 0
    sink_retries: int = 0
    manifest_errors: int = 0
    supplements_written: int = 0
    progress_gaps: int = 0
    policies: int = 0
    policies_unreadable: int = 0


@dataclass
class ArchiveConfig:
    """What the archive needs from the settings and the topics."""

    bootstrap_servers: str
    policies_topic: str
    events_topic: str
    events_partitions: int
    state_window: int
    idle_seconds: float
    aws_endpoint_url: str
    aws_region: str
    kms_key_template: str
    local_broker: bool
    fetch_max_wait_ms: int = 100
    """Longest wait of one fetch of the re-read consumer (``CARRYOVER_CONSUMER_FETCH_MAX_WAIT_MS``): a close
    re-reads records that exist, and the local broker holds every fetch for its whole max wait."""
    keys: Callable[[], Any] = field(repr=False, default=lambda: None)
    """Coroutine function giving the tenant keyring (loaded on first close)."""


class ArchiveService(Service):
    """The archive of one worker (module docstring)."""

    def __init__(
        self,
        config: ArchiveConfig,
        *,
        state_table: Any,
        directory: Directory,
        assigned: Callable[[], set[TopicPartition]],
        highwater: Callable[[TopicPartition], int | None],
        position: Callable[[TopicPartition], Awaitable[int | None]],
        directory_ready: Callable[[], bool],
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.config = config
        self.table = state_table
        self.directory = directory
        self.assigned = assigned
        self.highwater = highwater
        self.position = position
        self.directory_ready = directory_ready
        self.book = PolicyBook()
        self.stats = ArchiveStats()
        self.policies_caught_up = False
        self._policies_read = asyncio.Event()
        self._policy_consumer: AIOKafkaConsumer | None = None
        self._policy_targets: dict[TopicPartition, int] = {}
        self._reader: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._sinks_context: Any = None
        self._sinks: Sinks | None = None
        self._keys: DecryptionKeys | None = None
        self._last_record: dict[int, float] = {}
        self._resumed: set[int] = set()
        self._stuck_logged: set[int] = set()

    # -- service -----------------------------------------------------------------------------

    async def on_start(self) -> None:
        """Open the policy consumer (from the beginning), the re-read consumer, the producer of ticks, S3."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.config.bootstrap_servers, group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        self._policy_consumer = consumer
        partitions = await _partitions(consumer, self.config.policies_topic)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await local_broker.corrected_end_offsets(consumer, partitions)
        self._policy_targets = {tp: end for tp, end in ends.items() if end > 0}
        self.policies_caught_up = not self._policy_targets
        if self.policies_caught_up:
            self._policies_read.set()
        self._reader = AIOKafkaConsumer(
            bootstrap_servers=self.config.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            max_partition_fetch_bytes=4 * 2**20,
            fetch_max_wait_ms=self.config.fetch_max_wait_ms,
        )
        await self._reader.start()
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.config.bootstrap_servers,
            **local_broker.producer_options(self.config.local_broker),
        )
        await self._producer.start()
        self._sinks_context = open_sinks(
            self.config.aws_endpoint_url, self.config.aws_region, self.config.kms_key_template
        )
        self._sinks = await self._sinks_context.__aenter__()

    async def on_stop(self) -> None:
        """Close every client."""
        for client in (self._policy_consumer, self._reader, self._producer):
            if client is not None:
                await client.stop()
        if self._sinks_context is not None:
            await self._sinks_context.__aexit__(None, None, None)

    @Service.task
    async def _follow_policies(self) -> None:
        consumer = self._policy_consumer
        assert consumer is not None  # on_start ran
        while not self.should_stop:
            batches = await consumer.getmany(timeout_ms=200, max_records=1000)
            for tp, messages in batches.items():
                for message in messages:
                    problem = self.book.apply(message.key, message.value, int(message.timestamp))
                    if problem is not None:
                        self.stats.policies_unreadable += 1
                        log.warning(
                            "archive: policy record %s/%s ignored: %s", tp.partition, message.offset, problem
                        )
                if (
                    tp in self._policy_targets
                    and messages
                    and messages[-1].offset + 1 >= self._policy_targets[tp]
                ):
                    del self._policy_targets[tp]
            self.stats.policies = len(self.book)
            if not self.policies_caught_up and not self._policy_targets:
                self.policies_caught_up = True
                self._policies_read.set()
                log.info("archive: policies caught up, %d policies", len(self.book))

    @Service.timer(1.0)
    async def _ticks(self) -> None:
        """Tick every partition of the conversation-events topic this worker owns that has been idle."""
        if self._producer is None or not self.policies_caught_up or not len(self.book):
            return
        now = time.time()
        for tp in self.assigned():
            if tp.topic != self.config.events_topic:
                continue
            last = self._last_record.setdefault(tp.partition, now)
            if now - last >= self.config.idle_seconds and await self._caught_up(tp, idle_s=now - last):
                self._last_record[tp.partition] = now
                try:
                    await self._producer.send_and_wait(
                        tp.topic, b"", key=None, partition=tp.partition, headers=tick_headers(int(now * 1000))
                    )
                except Exception as exc:  # noqa: BLE001 - the next tick comes in idle_seconds
                    log.warning("archive: tick of partition %d not sent (%r)", tp.partition, exc)
                    continue
                self.stats.ticks_sent += 1

    async def _caught_up(self, tp: TopicPartition, idle_s: float = 0.0) -> bool:
        """True when every record of the partition was read (idle, not just behind): only then a tick.

        Read means observed by the archive (its progress) or fetched by the stream consumer (its position):
        after a restart the stream resumes at the committed offset, which may be at the end of a partition
        whose restored progress is older; the tick that then follows reports the gap instead of waiting."""
        highwater = self.highwater(tp)
        raw = self.table.get(_progress_key(tp.partition))
        last = Progress.from_json(raw).last_offset if raw is not None else -1
        if highwater is not None and highwater <= last + 1:
            return True
        try:
            position = await asyncio.wait_for(self.position(tp), timeout=1.0)
        except Exception:  # noqa: BLE001 - no position yet (being reset): not caught up, asked again next tick
            position = None
        if highwater is not None and position is not None and highwater <= position:
            return True
        if idle_s >= 10 * self.config.idle_seconds and tp.partition not in self._stuck_logged:
            self._stuck_logged.add(tp.partition)  # once per partition and process: a diagnosis, not a flood
            log.warning(
                "archive: partition %d idle for %.0fs but not caught up, so no tick: end offset %s, stream "
                "position %s, archive progress at %d",
                tp.partition,
                idle_s,
                highwater,
                position,
                last,
            )
        return False

    # -- the step ----------------------------------------------------------------------------

    async def wait_ready(self) -> None:
        """Wait until the policies and the user directory are read (before the first record)."""
        await self._policies_read.wait()
        for _ in itertools.count():  # the directory too: a business unit is looked up at every close
            if self.directory_ready():
                break
            await asyncio.sleep(0.1)

    async def on_record(self, partition: int, offset: int, headers: Headers, value: bytes) -> None:
        """Account for one record of the conversation-events topic; archive the windows it closes."""
        await self.wait_ready()
        self.stats.records += 1
        self._last_record[partition] = time.time()
        pkey = _progress_key(partition)
        raw = self.table.get(pkey)
        progress = Progress.from_json(raw) if raw is not None else Progress()
        if partition not in self._resumed:
            self._resumed.add(partition)
            log.info(
                "archive: partition %d read from offset %d (progress at %s)",
                partition,
                offset,
                progress.last_offset if raw is not None else "none",
            )
        if raw is not None and offset > progress.last_offset + 1:
            # records the archive never observed: its progress was restored older than the stream's committed
            # offset (a changelog recovery that lost updates); windows may then close late, with a newer state
            self.stats.progress_gaps += 1
            log.warning(
                "archive: partition %d resumed after a gap: progress at offset %d, stream at %d",
                partition,
                progress.last_offset,
                offset,
            )
        if progress.pending_deletes:
            for key in progress.pending_deletes:
                self.table.pop(key.encode(), None)
            progress.pending_deletes = []
        tick = parse_tick(headers)
        tenant: str | None = None
        conversation = ""
        time_ms: int | None = tick
        if tick is None:
            topic = next((bytes(v).decode() for k, v in headers if k == CANONICAL_TOPIC_HEADER), "")
            try:
                fact = decode_fact(topic, value) if topic else None
            except StateInputError:
                fact = None  # the state stage dead-lettered it; it moves nothing here
            if fact is not None and fact.scope != "user" and fact.time_ms > 0:
                tenant, time_ms = fact.tenant, fact.time_ms
                conversation = fact.conversation_id
        ckey = conversation_key(tenant, conversation) if tenant is not None and conversation else ""
        step = observe(progress, self.book, offset, tenant=tenant, time_ms=time_ms, conversation_key=ckey)
        self.stats.late_events += len(step.late)
        if step.late:
            log.warning(
                "archive: an event came after its window closed (partition %d, offset %d)", partition, offset
            )
        if ckey:
            for pid, start in step.added:
                skey = _set_key(partition, pid, start)
                members = self._members(skey)
                if ckey not in members:
                    members.append(ckey)
                    self.table[skey.encode()] = json.dumps(sorted(members)).encode()
        reread = await self._events_of_closes(partition, step.closes) if step.closes else {}
        for close in step.closes:
            await self._close(partition, close, reread)
            progress.pending_deletes.append(_set_key(partition, close.policy.id, close.window.start_ms))
        self.table[pkey] = progress.to_json()

    def _members(self, skey: str) -> list[str]:
        raw = self.table.get(skey.encode())
        return list(json.loads(raw)) if raw is not None else []

    # -- closing -----------------------------------------------------------------------------

    async def _events_of_closes(
        self, partition: int, closes: tuple[Close, ...]
    ) -> dict[str, list[tuple[int, Any]]]:
        """The events the ``closes`` of one record need, in one re-read (many policies close at once: one
        re-read each cost a fetch round trip per close): per conversation, (offset, event) in offset order,
        from the earliest first offset of the closing windows to the closing record."""
        wanted: set[str] = set()
        firsts: list[int] = []
        for close in closes:
            members = self._members(_set_key(partition, close.policy.id, close.window.start_ms))
            if members and close.first_offset is not None:
                wanted.update(members)
                firsts.append(close.first_offset)
        if not wanted:
            return {}
        through = max(close.through_offset for close in closes)  # the same record for every close of a step
        return await self._reread(partition, min(firsts), through, wanted)

    async def _close(self, partition: int, close: Close, reread: dict[str, list[tuple[int, Any]]]) -> None:
        """Archive one window of one partition: files, the partition's part, the manifest when complete.
        ``reread``: :meth:`_events_of_closes` of the record's closes."""
        policy = close.policy.policy
        window = close.window
        sink = self._sink_for(close)
        members = self._members(_set_key(partition, close.policy.id, window.start_ms))
        files: list[ManifestFile] = []
        counts: dict[str, dict[str, int]] = {}
        if members and close.first_offset is not None:
            keys = await self._decryption_keys()
            first_offset = close.first_offset
            events = {
                ckey: [event for offset, event in reread.get(ckey, []) if offset >= first_offset]
                for ckey in members
            }
            for ckey in sorted(members):
                raw_state = self.table.get(ckey.encode())
                if raw_state is None:
                    continue
                state = ConversationState.from_json(raw_state, window=self.config.state_window)
                cw = conversation_window(
                    state, self.directory, policy.business_unit, window, events.get(ckey, [])
                )
                if cw is None:
                    continue
                counts[cw.conversation_id] = cw.event_counts()
                for fmt in policy.formats:
                    rendered = render(fmt, cw, keys, redact_suppressed=policy.redact_suppressed)
                    key = object_key(policy.tenant, policy.business_unit, fmt, window, cw.conversation_id)
                    await self._put(sink, key, rendered.data, close)
                    files.append(
                        ManifestFile(
                            key, fmt.value, cw.conversation_id, sha256_hex(rendered.data), len(rendered.data)
                        )
                    )
        log.info(
            "archive: partition %d closed %s %s at offset %d: %d conversations active, %d archived",
            partition,
            close.policy.id,
            window.label,
            close.through_offset,
            len(members),
            len(counts),
        )
        supplements = await self._supplements(partition, close, sink) if close.late else []
        first = min(close.after_offset + 1, close.through_offset)  # several windows may close on one record
        if close.first_offset is not None:
            first = min(first, close.first_offset)
        part = ManifestPart(
            policy.tenant,
            policy.business_unit,
            window,
            self.config.events_topic,
            partition,
            self.config.events_partitions,
            close.after_offset,
            close.through_offset,
            first,
            tuple(sorted(files)),
            counts,
            tuple(sorted(supplements)),
        )
        await self._put(
            sink, part_key(policy.tenant, policy.business_unit, window, partition), part.to_json(), close
        )
        self.stats.parts_written += 1
        self.stats.windows_closed += 1
        try:
            await self._assemble(close, sink, window)
        except (
            ValueError
        ) as exc:  # parts that do not make a manifest: a bug or a tampered bucket, not retried
            self.stats.manifest_errors += 1
            log.error("archive: the manifest of window %s cannot be made: %s", window.label, exc)

    async def _supplements(self, partition: int, close: Close, sink: Sink) -> list[SupplementFile]:
        """Deliver the late events of ``close.late`` as supplements with ``close.window``."""
        policy = close.policy.policy
        keys = await self._decryption_keys()
        wanted = {e.conversation_key for e in close.late}
        offsets = {e.offset for e in close.late}
        events = {
            ckey: [event for _offset, event in found]
            for ckey, found in (
                await self._reread(partition, min(offsets), max(offsets), wanted, only=offsets)
            ).items()
        }
        delivered: list[SupplementFile] = []
        groups = sorted(
            {(e.window, e.conversation_key) for e in close.late}, key=lambda g: (g[0].start_ms, g[1])
        )
        for original, ckey in groups:
            raw_state = self.table.get(ckey.encode())
            if raw_state is None:
                continue
            state = ConversationState.from_json(raw_state, window=self.config.state_window)
            cw = conversation_window(
                state, self.directory, policy.business_unit, original, events.get(ckey, [])
            )
            if cw is None:
                continue
            for fmt in policy.formats:
                data = render(fmt, cw, keys, redact_suppressed=policy.redact_suppressed).data
                key = supplement_key(
                    policy.tenant, policy.business_unit, fmt, close.window, original, cw.conversation_id
                )
                await self._put(sink, key, data, close)
                original_key = object_key(
                    policy.tenant, policy.business_unit, fmt, original, cw.conversation_id
                )
                exists = await self._retry(partial(sink.get, original_key)) is not None
                delivered.append(
                    SupplementFile(
                        key,
                        fmt.value,
                        cw.conversation_id,
                        sha256_hex(data),
                        len(data),
                        original.label,
                        original_key if exists else "",
                        tuple(cw.event_counts().items()),
                    )
                )
        self.stats.supplements_written += len(delivered)
        return delivered

    async def _assemble(self, close: Close, sink: Sink, window: Window) -> None:
        """Write the manifest of ``window`` (and of the windows after it) once every part is there."""
        policy = close.policy.policy
        first_window = close.policy.first_window
        for _ in range(10_000):
            prefix = parts_prefix(policy.tenant, policy.business_unit, window)
            keys = await self._retry(partial(sink.list, prefix))
            if len(keys) < self.config.events_partitions:
                return
            mkey = manifest_key(policy.tenant, policy.business_unit, window)
            if await self._retry(partial(sink.get, mkey)) is None:
                previous: Manifest | None = None
                if window != first_window:
                    before = window_of(policy, window.start_ms - 1)
                    raw_before = await self._retry(
                        partial(sink.get, manifest_key(policy.tenant, policy.business_unit, before))
                    )
                    if raw_before is None:
                        return  # the previous window is not complete: its last writer goes on to this one
                    previous = Manifest.from_json(raw_before)
                parts = []
                for key in keys:
                    data = await self._retry(partial(sink.get, key))
                    if data is not None:
                        parts.append(ManifestPart.from_json(data))
                manifest = manifest_from_parts(parts, previous)
                await self._put(sink, mkey, manifest.to_json(), close)
                self.stats.manifests_written += 1
            window = window_of(policy, window.end_ms)

    # -- adapters ----------------------------------------------------------------------------

    def _sink_for(self, close: Close) -> Sink:
        assert self._sinks is not None  # on_start ran
        return self._sinks.for_destination(close.policy.policy.parsed_destination)

    async def _put(self, sink: Sink, key: str, data: bytes, close: Close) -> None:
        policy = close.policy.policy
        try:
            outcome = await self._retry(
                lambda: sink.put_once(key, data, tenant=policy.tenant, retention_days=policy.retention_days)
            )
        except ObjectConflict:
            self.stats.conflicts += 1
            log.error(
                "archive: an object of window %s of a %s policy exists with other bytes; it is kept, the new "
                "bytes are not delivered (conflicts so far: %d)",
                close.window.label,
                policy.tenant,
                self.stats.conflicts,
            )
            return
        if outcome == "written":
            self.stats.files_written += 1
        else:
            self.stats.files_identical += 1

    async def _retry(self, call: Callable[[], Any]) -> Any:
        """``await call()`` until it succeeds (ObjectConflict passes through): a close never skips a file."""
        delay = 0.5
        while True:
            try:
                return await call()
            except ObjectConflict:
                raise
            except Exception as exc:  # noqa: BLE001 - the sink is down or refuses: retry, loudly
                self.stats.sink_retries += 1
                log.warning("archive: sink call failed (%s), retrying in %.1fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _decryption_keys(self) -> DecryptionKeys:
        if self._keys is None:
            self._keys = await self.config.keys()
        return self._keys

    async def _reread(
        self, partition: int, first: int, through: int, wanted: set[str], only: set[int] | None = None
    ) -> dict[str, list[tuple[int, Any]]]:
        """The events of the ``wanted`` conversations at offsets ``first``..``through`` of the partition, as
        (offset, event) per conversation key."""
        reader = self._reader
        assert reader is not None  # on_start ran
        tp = TopicPartition(self.config.events_topic, partition)
        reader.assign([tp])
        reader.seek(tp, first)
        events: dict[str, list[tuple[int, Any]]] = {}
        quiet_since = time.monotonic()
        while True:
            batches = await reader.getmany(tp, timeout_ms=500, max_records=5000)
            if batches.get(tp):
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > 10:
                quiet_since = time.monotonic()
                log.warning(
                    "archive: re-reading partition %d for offsets %d..%d: nothing received for 10 s at "
                    "offset %s",
                    partition,
                    first,
                    through,
                    await reader.position(tp),
                )
            done = False
            for message in batches.get(tp, []):
                if message.offset > through:
                    done = True
                    break
                self.stats.reread_records += 1
                key = (message.key or b"").decode(errors="replace")
                if key in wanted and (only is None or message.offset in only):
                    headers = [(k, bytes(v)) for k, v in (message.headers or [])]
                    topic = next((v.decode() for k, v in headers if k == CANONICAL_TOPIC_HEADER), "")
                    if topic:
                        try:
                            event = decode_envelope(topic, message.value or b"")
                            events.setdefault(key, []).append((message.offset, event))
                        except StateInputError:
                            pass  # dead-lettered by the state stage: not an event of the conversation
                if message.offset >= through:
                    done = True
                    break
            if done:
                return events


ARCHIVE_KEY_PREFIX = "%archive/"
"""Prefix of the archive's own keys in the state table. No conversation key starts with it: their parts are
escaped (:func:`app.state.facts.conversation_key`): a ``%`` in one is always followed by ``25`` or ``2F``."""


def _progress_key(partition: int) -> bytes:
    """Key of a partition's :class:`Progress` in the state table."""
    return f"{ARCHIVE_KEY_PREFIX}p/{partition}".encode()


def _set_key(partition: int, pid: str, start_ms: int) -> str:
    """Key of the conversations seen in one open window of one policy on one partition."""
    return f"{ARCHIVE_KEY_PREFIX}w/{partition}/{pid}/{start_ms}"


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    for _ in range(600):
        numbers = consumer.partitions_for_topic(topic)
        if numbers:
            return [TopicPartition(topic, p) for p in sorted(numbers)]
        await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
        await asyncio.sleep(0.1)
    raise RuntimeError(f"topic {topic} does not exist: run `carryover topics apply`")


__all__ = ["ArchiveConfig", "ArchiveService", "ArchiveStats"]
