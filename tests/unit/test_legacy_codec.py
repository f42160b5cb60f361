"""The legacy event family: every (type, version) in JSON and base64 protobuf, drifted field forms, errors."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.legacy import codec, spec, values
from models.legacy.codec import EncryptedPayload, LegacyEvent, LegacyFormatError
from models.legacy.legacy_event_pb2 import PodEvent

ROOM = base64.urlsafe_b64encode(bytes(range(200, 218))).rstrip(b"=").decode()  # has - and _ characters
MESSAGE = base64.urlsafe_b64encode(b"\xfb\xff\x01message-id-0001").rstrip(b"=").decode()
T_MS = 1_717_171_717_123

# canonical attribute values for every attribute any spec uses
SAMPLE: dict[str, spec.AttrValue] = {
    "conversation_id": ROOM,
    "message_id": MESSAGE,
    "parent_message_id": base64.urlsafe_b64encode(b"parent-7").rstrip(b"=").decode(),
    "sender_user_id": "349026222344891",
    "editor_user_id": "349026222344892",
    "creator_user_id": "349026222344893",
    "actor_user_id": "349026222344894",
    "user_id": "349026222344895",
    "markup": '<messageML>Hi <mention uid="123"/> #deal</messageML>',
    "name": "FX desk",
    "description": "spot and forwards",
    "external": True,
    "public": True,
    "role": "MODERATOR",
    "from_role": "MEMBER",
    "to_role": "OWNER",
    "emoji": "+1",
    "username": "jdoe",
    "display_name": "Jane Doe",
    "email": "jane@example.com",
    "business_unit": "Rates",
    "reason": "wrong room",
    "hold_id": "hold-42",
    "members": (("349026222344893", "OWNER"), ("349026222344895", "MEMBER")),
}
ALL = sorted(spec.SPECS)


def attrs_for(event_spec: spec.EventSpec) -> dict[str, spec.AttrValue]:
    """Every attribute the spec knows, sample values."""
    return {f.attr: SAMPLE[f.attr] for f in event_spec.fields}


def test_family_covers_at_least_twelve_types_with_several_versions() -> None:
    assert len(spec.TYPES) >= 12
    assert sum(1 for t in spec.TYPES if len(spec.versions(t)) >= 2) >= 6


@pytest.mark.parametrize(("event_type", "version"), ALL)
@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_round_trip_every_type_version_and_encoding(event_type: str, version: int, encoding: str) -> None:
    event_spec = spec.SPECS[(event_type, version)]
    attrs = attrs_for(event_spec)
    encode = codec.encode_json if encoding == "json" else codec.encode_protobuf
    payload = encode(event_type, version, attrs, tenant_id="acme-bank", occurred_ms=T_MS)
    decoded = codec.decode_payload(payload)
    assert decoded == LegacyEvent(event_type, version, encoding, "acme-bank", T_MS, attrs)


def test_v1_message_sent_as_the_old_backend_writes_it() -> None:
    std_room = base64.b64encode(bytes(range(200, 218))).decode()
    assert "+" in std_room or "/" in std_room
    payload = json.dumps(
        {
            "type": "MESSAGE_SENT",
            "podId": "acme-bank",
            "timestamp": T_MS,
            "streamId": std_room,
            "messageId": base64.b64encode(b"\xfb\xff\x01message-id-0001").decode(),
            "fromUserId": 349026222344891,
            "message": "<messageML>hello</messageML>",
        }
    ).encode()
    event = codec.decode_payload(payload)
    assert isinstance(event, LegacyEvent)
    assert (event.type, event.version, event.tenant_id, event.occurred_ms) == (
        "MESSAGE_SENT",
        1,
        "acme-bank",
        T_MS,
    )
    assert event.attrs["conversation_id"] == ROOM  # standard base64 -> URL-safe, unpadded
    assert event.attrs["message_id"] == MESSAGE
    assert event.attrs["sender_user_id"] == "349026222344891"  # number -> decimal string


def test_v2_message_sent_nested_iso_and_string_ids() -> None:
    payload = json.dumps(
        {
            "eventType": "MESSAGE_SENT",
            "schemaVersion": 2,
            "tenantId": "globex",
            "occurredAt": "2024-05-31T16:08:37.123+00:00",
            "conversation": {"streamId": ROOM},
            "messageId": MESSAGE,
            "sender": {"userId": "77"},
            "body": {"format": "MESSAGEML", "content": "<messageML>x</messageML>"},
        }
    ).encode()
    event = codec.decode_payload(payload)
    assert isinstance(event, LegacyEvent)
    assert event.occurred_ms == T_MS
    assert event.attrs == {
        "conversation_id": ROOM,
        "message_id": MESSAGE,
        "sender_user_id": "77",
        "markup": "<messageML>x</messageML>",
    }


def test_old_room_deactivation_without_timestamp_is_accepted() -> None:
    payload = codec.encode_json(
        "ROOM_DEACTIVATED",
        1,
        {"conversation_id": ROOM, "actor_user_id": "5"},
        tenant_id=None,
        occurred_ms=None,
    )
    event = codec.decode_payload(payload)
    assert isinstance(event, LegacyEvent)
    assert event.occurred_ms is None and event.tenant_id is None


def test_encrypted_wrapper_is_recognized() -> None:
    payload = codec.encode_encrypted("acme-bank", "acme-bank/v1", b"\x00" * 40)
    assert codec.decode_payload(payload) == EncryptedPayload("acme-bank", "acme-bank/v1", b"\x00" * 40)


def _v2_sent(**overrides: object) -> bytes:
    document: dict[str, object] = {
        "eventType": "MESSAGE_SENT",
        "schemaVersion": 2,
        "tenantId": "t",
        "occurredAt": "2024-05-31T16:08:37.123Z",
        "conversation": {"streamId": ROOM},
        "messageId": MESSAGE,
        "sender": {"userId": "77"},
        "body": {"content": "x"},
    }
    document.update(overrides)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("payload", "reason", "says"),
    [
        (b"", "malformed", "empty payload"),
        (b"\xff\xfe\x00garbage", "malformed", "neither JSON nor base64"),
        (b"{not json", "malformed", "not valid JSON"),
        (b"[1, 2]", "malformed", "neither JSON nor base64"),
        (b'{"hello": 1}', "malformed", "no event type"),
        (b'{"type": "VOICE_CALL_STARTED", "version": 1}', "unknown_type", "VOICE_CALL_STARTED"),
        (b'{"type": "MESSAGE_SENT", "version": 9}', "unsupported_version", "known: 1, 2"),
        (b'{"type": "REACTION_ADDED"}', "unsupported_version", "version 1"),
        (b'{"type": "MESSAGE_SENT", "version": "2"}', "malformed", "version is not an integer"),
        (_v2_sent(sender={"userId": 77}), "malformed", "sender.userId: expected a decimal-string user id"),
        (_v2_sent(conversation={"streamId": "abc+/=="}), "malformed", "URL-safe"),
        (_v2_sent(occurredAt="yesterday"), "malformed", "ISO-8601"),
        (_v2_sent(occurredAt="2024-05-31T16:08:37"), "malformed", "without a time zone"),
        (_v2_sent(body={}), "malformed", "no body.content"),
        (
            b'{"type":"MESSAGE_SENT","timestamp":1717171717,"streamId":"AAAA","messageId":"AAAA","fromUserId":1,'
            b'"message":"x"}',
            "malformed",
            "seconds instead of milliseconds",
        ),
        (
            b'{"type":"USER_CREATED","timestamp":1717171717123,"userId":true,"userName":"a","displayName":"b"}',
            "malformed",
            "numeric user id",
        ),
        (b'{"tenantId": "t", "keyId": "k", "ciphertext": "%%%"}', "malformed", "not valid base64"),
        (b'{"tenantId": "t", "ciphertext": "AAAA"}', "malformed", "without keyId"),
        (
            base64.b64encode(PodEvent(event_type="", version=1).SerializeToString() + b"\x01"),
            "malformed",
            "PodEvent",
        ),
        (
            base64.b64encode(
                PodEvent(event_type="MESSAGE_SENT", version=1, timestamp=T_MS).SerializeToString()
            ),
            "malformed",
            "has no",
        ),
        (b"[" * 100_000, "malformed", "neither JSON nor base64"),
        (b"{" + b'"a":{' * 100_000, "malformed", "not valid JSON"),
    ],
    ids=lambda value: repr(value[:40]) if isinstance(value, bytes) else None,
)
def test_bad_payloads_say_what_is_wrong(payload: bytes, reason: str, says: str) -> None:
    with pytest.raises(LegacyFormatError) as caught:
        codec.decode_payload(payload)
    assert caught.value.reason == reason
    assert says in str(caught.value)


@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_legacy_format_error(payload: bytes) -> None:
    try:
        codec.decode_payload(payload)
    except LegacyFormatError as exc:
        assert exc.reason in {"malformed", "unknown_type", "unsupported_version"}


@given(st.binary(min_size=1, max_size=64))
def test_standard_and_urlsafe_ids_normalize_to_the_same_canonical_id(raw: bytes) -> None:
    std = base64.b64encode(raw).decode()
    urlsafe = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert values.id_from_standard(std) == values.id_from_urlsafe(urlsafe) == urlsafe
    assert values.standard_id(urlsafe) == std


@given(st.integers(min_value=values.MIN_TIME_MS, max_value=values.MAX_TIME_MS - 1000))
def test_iso_and_millis_times_agree(epoch_ms: int) -> None:
    assert values.time_from_iso(values.iso_from_millis(epoch_ms)) == epoch_ms


def test_protobuf_members_and_roles() -> None:
    event = PodEvent(
        event_type="ROOM_CREATED",
        version=2,
        pod_id="t",
        timestamp=T_MS,
        stream_id=values.standard_id(ROOM),
        name="n",
        from_user_id=5,
    )
    event.members.add(user_id=5, role="owner")
    event.members.add(user_id=6)
    decoded = codec.decode_payload(base64.b64encode(event.SerializeToString()))
    assert isinstance(decoded, LegacyEvent)
    assert decoded.members() == (("5", "OWNER"), ("6", "MEMBER"))
