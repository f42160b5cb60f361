"""Webhook fan-in core: config records with sealed secrets, delivery records, the room checks, the canonical
MessageSent (deterministic, encrypted with the tenant key) and the per-hook history."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.crypto import aead
from app.crypto.keyring import Keyring, key_set
from app.state.conversation import ConversationState
from app.webhooks.config import ConfigRecordError, StoredHook, open_hook, seal_hook
from app.webhooks.delivery import DeliveryRecord, DeliveryRecordError, FanInRefused, event_id, fan_in
from app.webhooks.history import DEDUPE_IDS, HookHistory
from app.webhooks.hooks import HookDefinition
from app.webhooks.templates import TemplateRenderer
from tests.unit.test_state_conversation import created, deactivated, joined, left

TENANT, ROOM, BOT = "acme-bank", "q83vEjRWeJCrze8SNFZ4kA", "bot-1"
SECRET = "It's a Secret to Everybody"
KEYS = Keyring.static(
    key_set({TENANT: ("acme-bank/v2", [("acme-bank/v1", b"\x01" * 32), ("acme-bank/v2", b"\x02" * 32)])})
)
OTHER_KEYS = Keyring.static(key_set({TENANT: ("acme-bank/v2", [("acme-bank/v2", b"\x09" * 32)])}))
RENDERER = TemplateRenderer()


def hook(**changes: Any) -> HookDefinition:
    raw: dict[str, Any] = {
        "hook_id": "gh-acme-1",
        "tenant": TENANT,
        "conversation_id": ROOM,
        "bot_user_id": BOT,
        "auth_scheme": "github",
        "secrets": [SECRET],
        "template_name": "generic_json",
    }
    raw.update(changes)
    return HookDefinition.from_dict(raw)


def delivery(**changes: Any) -> DeliveryRecord:
    raw: dict[str, Any] = {
        "hook_id": "gh-acme-1",
        "tenant": TENANT,
        "conversation_id": ROOM,
        "delivery_id": "d-1",
        "event": "",
        "payload": {"title": "Build failed", "branch": "main"},
        "headers": {"content-type": "application/json"},
        "received_ms": 1_700_000_000_123,
    }
    raw.update(changes)
    return DeliveryRecord(**raw)


def room(*facts: Any) -> ConversationState:
    state = ConversationState(TENANT, ROOM)
    state.apply_all(facts or (created("e1", 1), joined("e2", 2, BOT)))
    return state


def test_config_record_round_trip_seals_every_secret_with_the_tenant_key() -> None:
    stored = StoredHook(hook(secrets=[SECRET, "previous-secret-1"]), 3, 1_700_000_000_000, "secret rotated")
    value = seal_hook(stored, KEYS)
    assert SECRET.encode() not in value and b"previous-secret-1" not in value
    record = json.loads(value)
    assert [s["key_id"] for s in record["secrets"]] == ["acme-bank/v2", "acme-bank/v2"]
    assert open_hook(value, KEYS) == stored
    assert stored.public_json()["secret_count"] == 2 and "secrets" not in stored.public_json()


def test_a_config_record_that_cannot_be_opened_names_the_hook_and_no_secret() -> None:
    value = seal_hook(StoredHook(hook(), 1, 0, "created"), KEYS)
    with pytest.raises(ConfigRecordError, match="gh-acme-1.*cannot be opened") as caught:
        open_hook(value, OTHER_KEYS, hook_id="gh-acme-1")
    assert SECRET not in str(caught.value)
    for bad in (b"not json", b'{"v": 2}', b'{"v": 1, "hook": {}}'):
        with pytest.raises(ConfigRecordError):
            open_hook(bad, KEYS)


def test_delivery_record_round_trip_and_key_is_the_rooms_conversation_key() -> None:
    record = delivery()
    assert DeliveryRecord.from_json(record.to_json()) == record
    assert record.key == f"{TENANT}/{ROOM}".encode()
    assert delivery(tenant="a/b").key == b"a%2Fb/" + ROOM.encode()
    for bad in (
        b"[]",
        b'{"v": 1}',
        b'{"v": 1, "hook_id": "h", "tenant": "t", "conversation_id": "c", "delivery_id": "d", "payload": []}',
    ):
        with pytest.raises(DeliveryRecordError):
            DeliveryRecord.from_json(bad)


def test_a_delivery_becomes_a_message_sent_by_the_bot_with_text_sealed_for_the_tenant() -> None:
    fanned = fan_in(delivery(), hook(), room(), RENDERER, KEYS)
    sent = fanned.envelope.message_sent
    assert (sent.tenant_id, sent.conversation_id, sent.sender_user_id) == (TENANT, ROOM, BOT)
    assert sent.event_id == fanned.ce_id == event_id("gh-acme-1", "d-1")
    assert (sent.provenance.source, sent.provenance.source_id, sent.provenance.source_message_id) == (
        "webhook",
        "gh-acme-1",
        "d-1",
    )
    assert sent.event_time.ToMilliseconds() == 1_700_000_000_123
    assert sent.text.key_id == fanned.encryption_key_id == "acme-bank/v2"
    text = aead.decrypt(b"\x02" * 32, sent.text.ciphertext, tenant_id=TENANT, key_id="acme-bank/v2").decode()
    assert "Build failed" in text and "main" in text
    # processed twice (after a crash): identical bytes, so every consumer's de-duplication holds
    assert fan_in(delivery(), hook(), room(), RENDERER, KEYS).envelope == fanned.envelope
    assert fan_in(delivery(delivery_id="d-2"), hook(), room(), RENDERER, KEYS).ce_id != fanned.ce_id


@pytest.mark.parametrize(
    ("the_hook", "state", "reason"),
    [
        (None, room(), "unknown_hook"),
        (hook(conversation_id="elsewhere"), room(), "hook_moved"),
        (hook(tenant="other-bank"), room(), "hook_moved"),
        (hook(), None, "no_room"),
        (hook(), room(created("e1", 1), joined("e2", 2, BOT), deactivated("e3", 3)), "room_inactive"),
        (hook(), room(created("e1", 1), joined("e2", 2, "alice")), "bot_not_member"),
        (hook(), room(created("e1", 1), joined("e2", 2, BOT), left("e3", 3, BOT)), "bot_not_member"),
        (hook(template_name="", template_source="{{ ''.__class__ }}"), room(), "template_unsafe"),
        (
            hook(
                template_name="",
                template_source="{% for i in range(9999) %}{% for j in range(9999) %}"
                "{% endfor %}{% endfor %}x",
            ),
            room(),
            "template_timeout",
        ),
    ],
)
def test_refusals_name_their_reason(the_hook: HookDefinition | None, state: Any, reason: str) -> None:
    with pytest.raises(FanInRefused) as caught:
        fan_in(delivery(), the_hook, state, RENDERER, KEYS)
    assert caught.value.reason == reason
    assert SECRET not in str(caught.value)


def test_a_room_of_another_tenant_is_never_posted_into() -> None:
    other = ConversationState("other-bank", ROOM)  # a state misfiled under this room's key
    with pytest.raises(FanInRefused) as caught:
        fan_in(delivery(), hook(), other, RENDERER, KEYS)
    assert caught.value.reason == "wrong_tenant"


def test_history_dedupes_delivery_ids_and_keeps_no_payload() -> None:
    history = HookHistory()
    history.record("d-1", "push", "posted", at_ms=1)
    history.record("d-1", "push", "duplicate", at_ms=2)
    history.record("d-2", "push", "dead_lettered", at_ms=3, reason="bot_not_member", detail="add it")
    again = HookHistory.from_json(history.to_json())
    assert again.seen("d-1") and again.seen("d-2") and not again.seen("d-3")
    answer = again.answer()
    assert answer["counts"] == {"posted": 1, "duplicate": 1, "dead_lettered": 1}
    assert [e["delivery_id"] for e in answer["entries"]] == ["d-2", "d-1", "d-1"]
    assert answer["entries"][0]["reason"] == "bot_not_member"
    for i in range(DEDUPE_IDS + 5):
        again.record(f"x-{i}", "", "posted", at_ms=i)
    assert len(again.ids) == DEDUPE_IDS and not again.seen("d-1")
    assert len(again.to_json()) < 200_000
