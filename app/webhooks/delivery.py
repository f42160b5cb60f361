"""A verified delivery on ``webhooks.deliveries.v1``, and what the fan-in makes of it (pure).

The receiver writes one :class:`DeliveryRecord` per accepted delivery, keyed by the hook room's
:func:`app.state.facts.conversation_key` (so it lands on the partition of that room's state), value compact
JSON: hook id, tenant, conversation, delivery id, event, the parsed body, the kept request headers
(:data:`app.webhooks.verify.KEPT_HEADERS`: never a signature or secret) and the receive time.

:func:`fan_in` turns one delivery into a canonical ``MessageSent`` (sender: the hook's bot, text sealed
with the tenant's current key, deterministic event id and ciphertext, so a delivery processed twice gives
identical bytes) or says why it cannot (:class:`FanInRefused`, a dead-letter reason):

* ``unknown_hook``: the hook was deleted since the delivery was accepted;
* ``hook_moved``: the hook now posts into another room or tenant than the delivery was keyed for;
* ``no_room``: conversation state has never seen the room; ``room_inactive``: it is deactivated;
* ``wrong_tenant``: the room's state belongs to another tenant (never posted: tenant isolation);
* ``bot_not_member``: the hook's bot is not a member of the room now;
* ``template_<reason>``: the template failed (:class:`app.webhooks.templates.RenderFailure`);
* ``no_key``: the tenant has no current key to seal the text with;
* ``malformed``: the record is not a delivery record.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from app.crypto import aead
from app.crypto.errors import CryptoError
from app.crypto.keyring import KeyLookup
from app.normalize.mapping.markup import normalize_markup
from app.state.conversation import ConversationState
from app.state.facts import conversation_key
from app.topics import MESSAGES
from app.webhooks.hooks import HookDefinition
from app.webhooks.templates import (
    SHIPPED_TEMPLATES,
    RenderedMessage,
    RenderFailure,
    TemplateRejected,
    TemplateRenderer,
)
from models.canonical.carryover.collaboration.v1.message_event_pb2 import MessageEvent
from models.canonical.carryover.collaboration.v1.message_sent_pb2 import MessageSent
from models.canonical.carryover.common.v1.encrypted_text_pb2 import EncryptedText
from models.canonical.carryover.common.v1.link_pb2 import Link
from models.canonical.carryover.common.v1.mention_pb2 import Mention
from models.canonical.carryover.common.v1.provenance_pb2 import Provenance

DELIVERY_VERSION = 1
EVENT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://carryover/webhooks/event-id/v1")
SOURCE = "webhook"
"""``Provenance.source`` and the ``ce_source`` suffix of webhook-originated messages."""


class DeliveryRecordError(ValueError):
    """A ``webhooks.deliveries.v1`` value that is not a delivery record (what is wrong, no body text)."""


@dataclass(frozen=True)
class DeliveryRecord:
    """One accepted delivery, as the receiver writes it."""

    hook_id: str
    tenant: str
    conversation_id: str
    delivery_id: str
    event: str
    payload: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    received_ms: int = 0

    @property
    def key(self) -> bytes:
        """The record key: the room's conversation key (co-partitioned with its state)."""
        return conversation_key(self.tenant, self.conversation_id).encode()

    def to_json(self) -> bytes:
        """The record value."""
        return json.dumps(
            {
                "v": DELIVERY_VERSION,
                "hook_id": self.hook_id,
                "tenant": self.tenant,
                "conversation_id": self.conversation_id,
                "delivery_id": self.delivery_id,
                "event": self.event,
                "payload": self.payload,
                "headers": self.headers,
                "received_ms": self.received_ms,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()

    @classmethod
    def from_json(cls, value: bytes) -> DeliveryRecord:
        """The record in ``value``; :class:`DeliveryRecordError` when it is not one."""
        try:
            raw = json.loads(value)
        except (ValueError, RecursionError):
            raise DeliveryRecordError("not JSON") from None
        if not isinstance(raw, dict) or raw.get("v") != DELIVERY_VERSION:
            raise DeliveryRecordError(f"not a version {DELIVERY_VERSION} delivery record")
        try:
            record = cls(
                hook_id=str(raw["hook_id"]),
                tenant=str(raw["tenant"]),
                conversation_id=str(raw["conversation_id"]),
                delivery_id=str(raw["delivery_id"]),
                event=str(raw.get("event", "")),
                payload=raw["payload"],
                headers={str(k): str(v) for k, v in dict(raw.get("headers") or {}).items()},
                received_ms=int(raw.get("received_ms", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DeliveryRecordError(f"missing or bad field ({type(exc).__name__}: {exc})"[:200]) from None
        if not isinstance(record.payload, dict):
            raise DeliveryRecordError("payload is not an object")
        return record


class FanInRefused(Exception):
    """Why a delivery does not become a message: ``reason`` (dead-letter reason) and a safe ``detail``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class FannedIn:
    """The canonical message a delivery became: envelope for ``collaboration.messages.v1`` and its ids."""

    envelope: MessageEvent
    ce_id: str
    ce_type: str
    ce_time_ms: int
    tenant_id: str
    encryption_key_id: str
    message_id: str


def event_id(hook_id: str, delivery_id: str) -> str:
    """The canonical event id of a delivery: uuid5 over the hook and the sender's delivery id."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{hook_id}\n{delivery_id}"))


def check_room(hook: HookDefinition, state: ConversationState | None) -> None:
    """Raise :class:`FanInRefused` unless the hook's bot may post into the room as ``state`` has it."""
    if state is None:
        raise FanInRefused(
            "no_room", f"no conversation state for {hook.conversation_id!r} of {hook.tenant!r}"
        )
    if state.tenant != hook.tenant or state.conversation_id != hook.conversation_id:
        raise FanInRefused("wrong_tenant", "the room's state belongs to another tenant or conversation")
    if not state.active:
        raise FanInRefused("room_inactive", f"conversation {hook.conversation_id!r} is deactivated")
    if hook.bot_user_id not in state.members():
        raise FanInRefused(
            "bot_not_member",
            f"bot {hook.bot_user_id!r} is not a member of {hook.conversation_id!r}: add it to the room",
        )


def _render(renderer: TemplateRenderer, hook: HookDefinition, delivery: DeliveryRecord) -> RenderedMessage:
    """The delivery rendered by the hook's template; a timeout is tried once more before it is final (a
    busy machine can stall a render that normally takes a millisecond: a first render also compiles the
    templates it imports), a looping template then costs two render deadlines."""
    for attempt in (1, 2):
        try:
            return renderer.render(
                delivery.payload,
                template_name=hook.template_name,
                template_source=hook.template_source,
                event=delivery.event,
                headers=delivery.headers,
                hook_id=hook.hook_id,
            )
        except TemplateRejected as exc:
            if exc.reason is RenderFailure.TIMEOUT and attempt == 1:
                continue
            raise FanInRefused(f"template_{exc.reason.value}", str(exc)[:500]) from None
    raise AssertionError("unreachable")  # pragma: no cover


def warm_up(renderer: TemplateRenderer) -> None:
    """Compile every shipped template and the templates they import (a first render does it otherwise,
    inside its render deadline)."""
    for name in sorted(SHIPPED_TEMPLATES):
        for event in ("", "push", "pull_request", "issues"):
            try:
                renderer.render({}, template_name=name, event=event)
            except TemplateRejected:
                pass


def fan_in(
    delivery: DeliveryRecord,
    hook: HookDefinition | None,
    state: ConversationState | None,
    renderer: TemplateRenderer,
    keys: KeyLookup,
) -> FannedIn:
    """The canonical message of ``delivery`` (see the module doc); :class:`FanInRefused` otherwise."""
    if hook is None:
        raise FanInRefused("unknown_hook", f"hook {delivery.hook_id!r} no longer exists")
    if (hook.tenant, hook.conversation_id) != (delivery.tenant, delivery.conversation_id):
        raise FanInRefused("hook_moved", "the hook now posts into another room than this delivery's")
    check_room(hook, state)
    rendered = _render(renderer, hook, delivery)
    ce_id = event_id(hook.hook_id, delivery.delivery_id)
    body = normalize_markup(rendered.markup)
    try:
        key_id, key = keys.current_key(hook.tenant)
    except CryptoError:
        raise FanInRefused("no_key", f"tenant {hook.tenant!r} has no current key") from None
    sealed = aead.seal_deterministic(
        key, body.text.encode(), tenant_id=hook.tenant, key_id=key_id, context=ce_id
    )
    occurred_ms = delivery.received_ms
    seconds, millis = divmod(occurred_ms, 1000)
    message_id = f"webhook-{ce_id}"
    sent = MessageSent(
        tenant_id=hook.tenant,
        event_id=ce_id,
        event_time=Timestamp(seconds=seconds, nanos=millis * 1_000_000),
        provenance=Provenance(
            source=SOURCE,
            source_id=hook.hook_id,
            source_message_id=delivery.delivery_id,
            legacy_type="WEBHOOK",
            legacy_version=1,
        ),
        conversation_id=hook.conversation_id,
        message_id=message_id,
        sender_user_id=hook.bot_user_id,
        text=EncryptedText(key_id=key_id, ciphertext=sealed),
        mentions=[Mention(user_id=uid, display_name=name) for uid, name in body.mentions],
        hashtags=list(body.hashtags),
        links=[Link(url=url, text=text) for url, text in body.links],
    )
    return FannedIn(
        envelope=MessageEvent(message_sent=sent),
        ce_id=ce_id,
        ce_type=MessageSent.DESCRIPTOR.full_name,
        ce_time_ms=occurred_ms,
        tenant_id=hook.tenant,
        encryption_key_id=key_id,
        message_id=message_id,
    )


TOPIC = MESSAGES
"""Where a fanned-in message goes (the canonical messages topic)."""
