"""State: per-conversation state in tables, fed by the canonical topics (role ``state``).

Two thin agents and one replica; the decisions are in :mod:`app.state`:

* ``agents.state.route`` reads the tenant-keyed canonical topics of conversations (conversations, messages,
  compliance) and repartitions each record by (tenant, conversation) into
  ``carryover.state.conversation-events.v1`` (:func:`app.state.routing.route_record`). Its table
  ``state-hold-targets`` remembers what each legal hold was set on, so a release (which names only its hold)
  reaches the right conversation.
* ``agents.state.conversations`` reads that topic and keeps ``state-conversations``: one
  :class:`app.state.ConversationState` per conversation (:func:`app.state.routing.apply_record`).
* :class:`app.state.directory_replica.DirectoryReplica` keeps every user of every tenant in every worker.

Both agents run with concurrency 1 (tables in offset order, faust #606) and handle every record inside a
guard: a record they cannot use becomes a dead letter with a reason (stage ``state``), never a crash.
At-least-once: Faust flushes the producer (forwards and changelog writes) before it commits offsets, and a
record processed again after a crash changes nothing (state keeps facts by event id; counters remember
recent event ids, ``CARRYOVER_STATE_DEDUPE_WINDOW``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from faust import StreamT
from faust.types.tuples import Message

from app import topics as topic_names
from app.agent_guard import send_until_accepted
from app.settings import RECORD_FRAMING_BYTES
from app.state import views
from app.state.directory_replica import DirectoryReplica
from app.state.routing import apply_record, route_record
from app.state.stage import (
    REASON_AGENT_ERROR,
    REASON_TOO_LARGE,
    StateStage,
    TableHoldBook,
    count_changelog_reads,
    dead_letter_reason,
    state_dead_letter,
)

if TYPE_CHECKING:
    from app.faust_app import CarryoverApp

log = logging.getLogger(__name__)

CONVERSATIONS_TABLE = "state-conversations"
HOLDS_TABLE = "state-hold-targets"


def register(app: CarryoverApp) -> None:
    """Add the state stage's agents, tables, directory replica and read views to ``app``."""
    settings, topics = app.carryover, app.streams
    table_options = {"block_cache_size": settings.rocksdb_block_cache_mib * 2**20}

    def bytes_table(name: str, partitions: int | None, help_text: str) -> Any:
        """A table of raw bytes keys and values (keys as sent, so Faust's router finds their owner)."""
        return app.Table(
            name,
            key_type=bytes,
            value_type=bytes,
            partitions=partitions,
            options=table_options,
            help=help_text,
        )

    holds = bytes_table(
        HOLDS_TABLE,
        topics.conversation_sources.partitions,
        "legal hold -> what it was set on (and releases that arrived before it)",
    )
    conversations = bytes_table(
        CONVERSATIONS_TABLE,
        topics.conversation_events.partitions,
        "per-conversation state (app.state.ConversationState JSON)",
    )
    directory = DirectoryReplica(
        settings.bootstrap_servers, topics.canonical[topic_names.USERS].get_topic_name()
    )
    app.service(directory)  # type: ignore[arg-type]  # Faust starts instances as well as classes
    app.readiness_checks.append(
        lambda: None if directory.caught_up else "user directory catching up with identity.users.v1"
    )
    stage = StateStage(
        conversations=conversations,
        holds=holds,
        directory=directory,
        window=settings.state_dedupe_window,
        max_state_bytes=settings.kafka_max_record_bytes - RECORD_FRAMING_BYTES - 1024,
        admin_token=settings.admin_token,
    )
    views.register(app, stage)
    app.state_stage = stage  # type: ignore[attr-defined]  # the archive role hooks into it
    stats = stage.stats
    app.counters["state"] = lambda: asdict(stats)
    for table in (holds, conversations):
        count_changelog_reads(app, table, stats)
    hold_book = TableHoldBook(holds)
    dead_letter_topic = topics.dead_letters.get_topic_name()
    conversation_events = topics.conversation_events.get_topic_name()
    prefix = settings.topic_prefix

    async def send(topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        await app.producer.send(topic, key, value, None, None, headers)

    async def dead_letter(
        message: Message, headers: list[tuple[str, bytes]], reason: str, error: str
    ) -> None:
        origin = f"{message.topic}/{message.partition}/{message.offset}"
        value, marked = state_dead_letter(
            message.value or b"",
            headers,
            reason=reason,
            error=error,
            origin=origin,
            max_bytes=settings.max_canonical_bytes,
        )
        stats.dead_lettered += 1
        await send_until_accepted(send, dead_letter_topic, message.key, value, marked, what=origin)

    async def refuse(message: Message, headers: list[tuple[str, bytes]], exc: Exception, where: str) -> None:
        """Dead-letter the record that raised ``exc`` (called inside the except block: logs its traceback)."""
        reason, error = dead_letter_reason(exc, where)
        if reason == REASON_AGENT_ERROR:
            log.exception("%s failed on %s/%s/%s", where, message.topic, message.partition, message.offset)
        elif reason == REASON_TOO_LARGE:
            log.error("%s; the event is dead-lettered (%s)", error, reason)
        await dead_letter(message, headers, reason, error)

    @app.agent(topics.conversation_sources, concurrency=1, name="agents.state.route")
    async def route(stream: StreamT[bytes]) -> None:
        """Repartition each canonical conversation record by (tenant, conversation)."""
        async for event in stream.events():
            message = event.message
            headers = [(k, bytes(v)) for k, v in (message.headers or [])]
            stats.routed += 1
            try:
                routed = route_record(
                    message.topic.removeprefix(prefix), message.value or b"", headers, hold_book
                )
            except Exception as exc:  # noqa: BLE001 - the guard: this record becomes its dead letter
                await refuse(message, headers, exc, "route agent")
                continue
            if routed.outcome == "hold_booked":
                stats.hold_booked += 1
            elif routed.outcome == "not_state":
                stats.not_state += 1
            for forward in routed.forwards:
                await send_until_accepted(
                    send,
                    conversation_events,
                    forward.key.encode(),
                    forward.value,
                    forward.headers,
                    what=forward.key,
                )
                stats.forwarded += 1

    @app.agent(topics.conversation_events, concurrency=1, name="agents.state.conversations")
    async def conversation_state(stream: StreamT[bytes]) -> None:
        """Apply each conversation's events to its state."""
        async for event in stream.events():
            message = event.message
            key = message.key or b""
            headers = [(k, bytes(v)) for k, v in (message.headers or [])]
            if stage.control_headers and any(k in stage.control_headers for k, _ in headers):
                await after_record(message, headers)
                continue
            try:
                applied = apply_record(
                    conversations.get(key),
                    key.decode(),
                    message.value or b"",
                    headers,
                    window=stage.window,
                    max_state_bytes=stage.max_state_bytes,
                )
            except Exception as exc:  # noqa: BLE001 - the guard: this record becomes its dead letter
                await refuse(message, headers, exc, "state agent")
                await after_record(message, headers)
                continue
            if applied.state is not None:
                conversations[key] = applied.state
                stats.applied += 1
            elif applied.outcome == "duplicate":
                stats.duplicates += 1
            else:
                stats.not_state += 1
            await after_record(message, headers)

    async def after_record(message: Message, headers: list[tuple[str, bytes]]) -> None:
        """The stage's hooks (the archive), in offset order, after the state handled the record."""
        for hook in stage.after_record:
            await hook(message.partition, message.offset, headers, message.value or b"")

    @app.every(30.0)
    async def log_state_progress() -> None:
        """One line every 30 s: what the state stage did so far."""
        log.info(
            "state: %d routed -> %d forwarded (%d holds booked); %d applied, %d duplicates, %d dead letters; "
            "directory %d users%s",
            stats.routed,
            stats.forwarded,
            stats.hold_booked,
            stats.applied,
            stats.duplicates,
            stats.dead_lettered,
            len(directory),
            "" if directory.caught_up else " (catching up)",
        )
