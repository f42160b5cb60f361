"""Webhooks: the receiver, the hooks' admin API, the hook replica and the fan-in agent (role ``webhooks``).

Thin; the decisions are in :mod:`app.webhooks`:

* :class:`app.webhooks.replica.HookReplica` keeps every hook of ``carryover.config.webhooks`` in every
  worker (secrets unsealed with the tenant keys, in memory only);
* :mod:`app.webhooks.views` serves ``POST /hooks/{hook_id}`` (verify, write the delivery to
  ``webhooks.deliveries.v1``, 202 after the broker's ack) and the admin API;
* ``agents.webhooks.fan_in`` reads ``webhooks.deliveries.v1`` (keyed and partitioned like the
  conversation state, so the room's state is local), skips delivery ids the hook's history already holds,
  checks the room against ``state-conversations`` (role ``state`` in the same worker), renders the hook's
  template and writes a canonical ``MessageSent`` to ``collaboration.messages.v1``
  (:func:`app.webhooks.delivery.fan_in`); anything else becomes a dead letter with its reason (stage
  ``webhooks``). Its table ``webhooks-hook-history`` keeps each hook's recent outcomes and delivery ids.

Concurrency 1 (order per conversation; table writes in offset order, faust #606). At-least-once: Faust
flushes the producer before it commits, and a delivery processed again gives the same event id and
ciphertext (deterministic), which the history (and state's own de-duplication) drop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from faust import StreamT

from app.agent_guard import send_until_accepted
from app.catalog.wire import EnvelopeCodec
from app.crypto.keyring import KeyLookup, Keyring
from app.dead_letters import dead_letter_headers, dead_letter_id, fit_dead_letter
from app.normalize.cloudevents import canonical_headers
from app.normalize.runtime import build_codec, build_keyring
from app.state.conversation import ConversationState
from app.topics import MESSAGES
from app.webhooks import views
from app.webhooks.delivery import SOURCE, DeliveryRecord, DeliveryRecordError, FanInRefused, fan_in, warm_up
from app.webhooks.history import HookHistory
from app.webhooks.replica import HookReplica
from app.webhooks.templates import TemplateRenderer
from app.webhooks.verify import ReplayGuard

if TYPE_CHECKING:
    from app.faust_app import CarryoverApp

log = logging.getLogger(__name__)

HISTORY_TABLE = "webhooks-hook-history"
STAGE = "webhooks"


def register(app: CarryoverApp) -> None:
    """Add the webhooks role's replica, views, fan-in agent and history table to ``app``."""
    from agents.state import CONVERSATIONS_TABLE  # noqa: PLC0415 - the state role registers the table

    settings, topics = app.carryover, app.streams
    lock = asyncio.Lock()
    built: dict[str, Any] = {}

    async def keyring() -> Keyring:
        async with lock:
            if "keyring" not in built:
                built["keyring"] = await build_keyring(settings)
        ring: Keyring = built["keyring"]
        return ring

    async def keys() -> KeyLookup:
        return await keyring()

    async def codec() -> EnvelopeCodec:
        if "codec" not in built:
            built["codec"] = await build_codec(settings)
        result: EnvelopeCodec = built["codec"]
        return result

    async def send_acked(
        topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        delivered = await app.producer.send(topic, key, value, None, None, headers)
        await delivered

    async def send(topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        await app.producer.send(topic, key, value, None, None, headers)

    replica = HookReplica(settings.bootstrap_servers, topics.webhook_config.get_topic_name(), keys)
    app.service(replica)  # type: ignore[arg-type]  # Faust starts instances as well as classes
    app.readiness_checks.append(
        lambda: None if replica.caught_up else "hook replica catching up with carryover.config.webhooks"
    )
    histories = app.Table(
        HISTORY_TABLE,
        key_type=bytes,
        value_type=bytes,
        partitions=topics.webhook_deliveries.partitions,
        options={"block_cache_size": settings.rocksdb_block_cache_mib * 2**20},
        help="hook id -> recent delivery ids and outcomes (app.webhooks.history.HookHistory JSON)",
    )
    stage = views.WebhookStage(
        replica=replica,
        keys=keys,
        send=send_acked,
        deliveries_topic=topics.webhook_deliveries.get_topic_name(),
        config_topic=topics.webhook_config.get_topic_name(),
        history_table=histories,
        admin_token=settings.admin_token,
        max_body_bytes=settings.webhook_max_body_bytes,
        guard=ReplayGuard(window_seconds=settings.webhook_replay_window_seconds),
    )
    views.register(app, stage)
    stats = stage.stats
    app.counters["webhooks"] = stats.counters
    renderer = TemplateRenderer()
    dead_letter_topic = topics.dead_letters.get_topic_name()
    messages_topic = topics.canonical[MESSAGES].get_topic_name()

    @app.agent(topics.webhook_deliveries, concurrency=1, name="agents.webhooks.fan_in")
    async def fan_in_agent(stream: StreamT[bytes]) -> None:
        """Turn each verified delivery into a canonical message, or a dead letter with its reason."""
        conversations: Any = app.tables[CONVERSATIONS_TABLE]
        ring, envelope_codec = await keyring(), await codec()
        # a delivery read before every hook is known would be dead-lettered as unknown_hook (after a restart
        # the fan-in gets its records at once, the replica needs a moment to re-read the config topic)
        await replica.wait_caught_up()
        warm_up(renderer)
        async for event in stream.events():
            message = event.message
            value = message.value or b""
            origin = f"{message.topic}/{message.partition}/{message.offset}"
            await ring.ensure_fresh()
            try:
                delivery = DeliveryRecord.from_json(value)
            except DeliveryRecordError as exc:
                await dead_letter(message.key, value, "malformed", str(exc), origin)
                continue
            hook_key = delivery.hook_id.encode()
            history = HookHistory.from_json(histories.get(hook_key))
            now_ms = int(time.time() * 1000)
            if history.seen(delivery.delivery_id):
                stats.duplicates += 1
                history.record(delivery.delivery_id, delivery.event, "duplicate", at_ms=now_ms)
                histories[hook_key] = history.to_json()
                continue
            try:
                raw_state = conversations.get(message.key)
                state = ConversationState.from_json(raw_state) if raw_state is not None else None
                fanned = fan_in(delivery, replica.hook(delivery.hook_id), state, renderer, ring)
                framed = envelope_codec.encode(MESSAGES, fanned.envelope)
            except FanInRefused as exc:
                await dead_letter(message.key, value, exc.reason, exc.detail, origin)
                history.record(
                    delivery.delivery_id,
                    delivery.event,
                    "dead_lettered",
                    at_ms=now_ms,
                    reason=exc.reason,
                    detail=exc.detail,
                )
                histories[hook_key] = history.to_json()
                continue
            except Exception as exc:  # noqa: BLE001 - the guard: this delivery becomes its dead letter
                log.exception("webhooks: fan-in failed on %s", origin)
                error = f"{type(exc).__name__} in the fan-in agent; see the worker log"
                await dead_letter(message.key, value, "agent_error", error, origin)
                history.record(
                    delivery.delivery_id, delivery.event, "dead_lettered", at_ms=now_ms, reason="agent_error"
                )
                histories[hook_key] = history.to_json()
                continue
            headers = canonical_headers(
                ce_id=fanned.ce_id,
                ce_type=fanned.ce_type,
                ce_time_ms=fanned.ce_time_ms,
                tenant_id=fanned.tenant_id,
                source=SOURCE,
                encryption_key_id=fanned.encryption_key_id,
            )
            await send_until_accepted(
                send,
                messages_topic,
                fanned.tenant_id.encode(),
                framed,
                headers,
                what=f"hook {delivery.hook_id}",
            )
            stats.fanned_in += 1
            history.record(delivery.delivery_id, delivery.event, "posted", at_ms=now_ms)
            histories[hook_key] = history.to_json()

    async def dead_letter(key: bytes | None, value: bytes, reason: str, error: str, origin: str) -> None:
        stats.dead_lettered += 1
        log.warning("webhooks: delivery %s dead-lettered: %s", origin, reason)
        marked = dead_letter_headers(
            [],
            reason=reason,
            stage=STAGE,
            error=error,
            origin=origin,
            letter_id=dead_letter_id(STAGE, origin, reason),
        )
        letter, letter_headers = fit_dead_letter(
            value, marked, settings.max_canonical_bytes - len(key or b"")
        )
        await send_until_accepted(send, dead_letter_topic, key, letter, letter_headers, what=origin)
