"""normalize(): every legacy type x version x encoding to its canonical records, dead-letter reasons,
determinism, encryption with the current key, and tenant isolation (example tables + properties)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import pytest
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.crypto import aead
from app.crypto.keyring import Keyring, key_set
from app.normalize.mapping.pipeline import MAPPERS, REASONS, CanonicalRecord, Rejected, normalize
from models.canonical.carryover.common.v1.member_role_pb2 import (
    MEMBER_ROLE_MEMBER,
    MEMBER_ROLE_MODERATOR,
    MEMBER_ROLE_OWNER,
)
from models.legacy import codec, spec

ACME, GLOBEX = "acme-bank", "globex"
KEYS = {
    ACME: ("acme-bank/v2", [("acme-bank/v1", b"\x11" * 32), ("acme-bank/v2", b"\x12" * 32)]),
    GLOBEX: ("globex/v1", [("globex/v1", b"\x21" * 32)]),
}
RING = Keyring.static(key_set(KEYS))
T_MS = 1_717_171_717_123
ROOM = base64.urlsafe_b64encode(bytes(range(200, 218))).rstrip(b"=").decode()
MESSAGE = base64.urlsafe_b64encode(b"\xfb\xff\x01message-id-0001").rstrip(b"=").decode()
PARENT = base64.urlsafe_b64encode(b"parent-7").rstrip(b"=").decode()
MARKUP = '<messageML>Hi <mention uid="123"/> see <a href="https://x">this</a> #deal</messageML>'
SAMPLE: dict[str, spec.AttrValue] = {
    "conversation_id": ROOM,
    "message_id": MESSAGE,
    "parent_message_id": PARENT,
    "sender_user_id": "1001",
    "editor_user_id": "1002",
    "creator_user_id": "1003",
    "actor_user_id": "1004",
    "user_id": "1005",
    "markup": MARKUP,
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
    "members": (("1003", "OWNER"), ("1005", "MEMBER")),
}
OVERRIDES: dict[tuple[str, int], dict[str, spec.AttrValue]] = {
    ("MEMBER_DEMOTED", 2): {"from_role": "MODERATOR", "to_role": "MEMBER"},
}
CONV, MSGS, USERS, COMPL = (
    "collaboration.conversations.v1",
    "collaboration.messages.v1",
    "identity.users.v1",
    "compliance.actions.v1",
)
MSG_REF = {"conversation_id": ROOM, "message_id": MESSAGE}
# (type, version) -> (topic, ce_type, fields of the first canonical event)
EXPECTED: dict[tuple[str, int], tuple[str, str, dict[str, Any]]] = {
    ("MESSAGE_SENT", 1): (
        MSGS,
        "collaboration.v1.MessageSent",
        {**MSG_REF, "sender_user_id": "1001", "parent_message_id": PARENT},
    ),
    ("MESSAGE_SENT", 2): (
        MSGS,
        "collaboration.v1.MessageSent",
        {**MSG_REF, "sender_user_id": "1001", "parent_message_id": PARENT},
    ),
    ("MESSAGE_EDITED", 1): (MSGS, "collaboration.v1.MessageEdited", {**MSG_REF, "editor_user_id": "1002"}),
    ("MESSAGE_EDITED", 2): (MSGS, "collaboration.v1.MessageEdited", {**MSG_REF, "editor_user_id": "1002"}),
    ("REACTION_ADDED", 2): (
        MSGS,
        "collaboration.v1.ReactionAdded",
        {**MSG_REF, "user_id": "1005", "emoji": "+1"},
    ),
    ("REACTION_REMOVED", 2): (
        MSGS,
        "collaboration.v1.ReactionRemoved",
        {**MSG_REF, "user_id": "1005", "emoji": "+1"},
    ),
    ("ROOM_CREATED", 1): (
        CONV,
        "collaboration.v1.ConversationCreated",
        {
            "conversation_id": ROOM,
            "name": "FX desk",
            "description": "spot and forwards",
            "creator_user_id": "1003",
            "external": True,
            "public": True,
        },
    ),
    ("ROOM_CREATED", 2): (
        CONV,
        "collaboration.v1.ConversationCreated",
        {
            "conversation_id": ROOM,
            "name": "FX desk",
            "description": "spot and forwards",
            "creator_user_id": "1003",
            "external": True,
            "public": True,
        },
    ),
    ("ROOM_UPDATED", 1): (
        CONV,
        "collaboration.v1.ConversationUpdated",
        {
            "conversation_id": ROOM,
            "name": "FX desk",
            "description": "spot and forwards",
            "actor_user_id": "1004",
        },
    ),
    ("ROOM_DEACTIVATED", 1): (
        CONV,
        "collaboration.v1.ConversationDeactivated",
        {"conversation_id": ROOM, "actor_user_id": "1004"},
    ),
    ("ROOM_REACTIVATED", 1): (
        CONV,
        "collaboration.v1.ConversationReactivated",
        {"conversation_id": ROOM, "actor_user_id": "1004"},
    ),
    ("USER_JOINED_ROOM", 1): (
        CONV,
        "collaboration.v1.MemberJoined",
        {"conversation_id": ROOM, "user_id": "1005", "actor_user_id": "1004", "role": MEMBER_ROLE_MEMBER},
    ),
    ("USER_JOINED_ROOM", 2): (
        CONV,
        "collaboration.v1.MemberJoined",
        {"conversation_id": ROOM, "user_id": "1005", "actor_user_id": "1004", "role": MEMBER_ROLE_MODERATOR},
    ),
    ("USER_LEFT_ROOM", 1): (
        CONV,
        "collaboration.v1.MemberLeft",
        {"conversation_id": ROOM, "user_id": "1005", "actor_user_id": "1004"},
    ),
    ("MEMBER_PROMOTED", 1): (
        CONV,
        "collaboration.v1.MemberRoleChanged",
        {
            "conversation_id": ROOM,
            "user_id": "1005",
            "actor_user_id": "1004",
            "old_role": MEMBER_ROLE_MEMBER,
            "new_role": MEMBER_ROLE_OWNER,
        },
    ),
    ("MEMBER_PROMOTED", 2): (
        CONV,
        "collaboration.v1.MemberRoleChanged",
        {
            "conversation_id": ROOM,
            "user_id": "1005",
            "actor_user_id": "1004",
            "old_role": MEMBER_ROLE_MEMBER,
            "new_role": MEMBER_ROLE_OWNER,
        },
    ),
    ("MEMBER_DEMOTED", 1): (
        CONV,
        "collaboration.v1.MemberRoleChanged",
        {
            "conversation_id": ROOM,
            "user_id": "1005",
            "actor_user_id": "1004",
            "old_role": MEMBER_ROLE_OWNER,
            "new_role": MEMBER_ROLE_MEMBER,
        },
    ),
    ("MEMBER_DEMOTED", 2): (
        CONV,
        "collaboration.v1.MemberRoleChanged",
        {
            "conversation_id": ROOM,
            "user_id": "1005",
            "actor_user_id": "1004",
            "old_role": MEMBER_ROLE_MODERATOR,
            "new_role": MEMBER_ROLE_MEMBER,
        },
    ),
    ("USER_CREATED", 1): (
        USERS,
        "identity.v1.UserCreated",
        {
            "user_id": "1005",
            "username": "jdoe",
            "display_name": "Jane Doe",
            "email": "jane@example.com",
            "business_unit": "",
        },
    ),
    ("USER_CREATED", 2): (
        USERS,
        "identity.v1.UserCreated",
        {
            "user_id": "1005",
            "username": "jdoe",
            "display_name": "Jane Doe",
            "email": "jane@example.com",
            "business_unit": "Rates",
        },
    ),
    ("USER_UPDATED", 1): (
        USERS,
        "identity.v1.UserUpdated",
        {
            "user_id": "1005",
            "display_name": "Jane Doe",
            "email": "jane@example.com",
            "business_unit": "Rates",
        },
    ),
    ("USER_UPDATED", 2): (
        USERS,
        "identity.v1.UserUpdated",
        {
            "user_id": "1005",
            "display_name": "Jane Doe",
            "email": "jane@example.com",
            "business_unit": "Rates",
        },
    ),
    ("USER_DEACTIVATED", 1): (
        USERS,
        "identity.v1.UserDeactivated",
        {"user_id": "1005", "actor_user_id": "1004"},
    ),
    ("MESSAGE_SUPPRESSED", 1): (
        COMPL,
        "compliance.v1.MessageSuppressed",
        {**MSG_REF, "actor_user_id": "1004", "reason": "wrong room"},
    ),
    ("MESSAGE_SUPPRESSED", 2): (
        COMPL,
        "compliance.v1.MessageSuppressed",
        {**MSG_REF, "actor_user_id": "1004", "reason": "wrong room"},
    ),
    ("LEGAL_HOLD_SET", 2): (
        COMPL,
        "compliance.v1.LegalHoldSet",
        {
            "hold_id": "hold-42",
            "user_id": "1005",
            "conversation_id": ROOM,
            "reason": "wrong room",
            "actor_user_id": "1004",
        },
    ),
    ("LEGAL_HOLD_RELEASED", 2): (
        COMPL,
        "compliance.v1.LegalHoldReleased",
        {"hold_id": "hold-42", "actor_user_id": "1004"},
    ),
}
ENCODINGS = ["json", "protobuf", "encrypted-json", "encrypted-protobuf"]


def attrs_for(event_type: str, version: int) -> dict[str, spec.AttrValue]:
    """Sample values for every attribute of a (type, version)."""
    fields = spec.SPECS[(event_type, version)].fields
    return {**{f.attr: SAMPLE[f.attr] for f in fields}, **OVERRIDES.get((event_type, version), {})}


def legacy_payload(
    event_type: str,
    version: int,
    encoding: str,
    *,
    tenant: str | None = ACME,
    attrs: Mapping[str, spec.AttrValue] | None = None,
    wrapper_tenant: str | None = None,
    key_owner: str | None = None,
    key_id: str | None = None,
    occurred_ms: int | None = T_MS,
) -> bytes:
    """What the legacy backend publishes; encrypted ones use the key owner's oldest key by default."""
    attrs = attrs_for(event_type, version) if attrs is None else attrs
    inner_encode = codec.encode_protobuf if encoding.endswith("protobuf") else codec.encode_json
    inner = inner_encode(event_type, version, attrs, tenant_id=tenant, occurred_ms=occurred_ms)
    if not encoding.startswith("encrypted"):
        return inner
    owner = key_owner or wrapper_tenant or tenant or ACME
    kid, key = key_id or KEYS[owner][1][0][0], dict(KEYS[owner][1])[key_id or KEYS[owner][1][0][0]]
    sealed_for = wrapper_tenant or tenant or ACME
    blob = aead.encrypt(key, inner, tenant_id=sealed_for, key_id=kid)
    return codec.encode_encrypted(wrapper_tenant if wrapper_tenant is not None else tenant, kid, blob)


def headers(tenant: str = ACME, message_id: str = "sqs-msg-1", **extra: str) -> dict[str, bytes]:
    """Staging headers as the ingest agent writes them."""
    base = {
        "tenant": tenant,
        "source": "sqs",
        "source_id": "https://sqs/q-acme",
        "source_message_id": message_id,
        "received_at": str(T_MS + 5000),
        **extra,
    }
    return {k: v.encode() for k, v in base.items()}


def records(
    payload: bytes, hdrs: Mapping[str, bytes] | None = None, keys: Keyring = RING
) -> list[CanonicalRecord]:
    """normalize() that must succeed."""
    outcome = normalize(payload, headers() if hdrs is None else hdrs, keys)
    assert not isinstance(outcome, Rejected), outcome
    return outcome


def rejected(payload: bytes, hdrs: Mapping[str, bytes] | None = None, keys: Keyring = RING) -> Rejected:
    """normalize() that must reject."""
    outcome = normalize(payload, headers() if hdrs is None else hdrs, keys)
    assert isinstance(outcome, Rejected), outcome
    return outcome


def inner(record: CanonicalRecord) -> Any:
    """The event inside a record's envelope."""
    return getattr(record.envelope, str(record.envelope.WhichOneof("event")))


def open_text(message: Any, tenant: str = ACME) -> str:
    """Decrypts an EncryptedText as a consumer holding the tenant keys would."""
    key = RING.decryption_key(tenant, message.text.key_id)
    return aead.decrypt(key, message.text.ciphertext, tenant_id=tenant, key_id=message.text.key_id).decode()


def test_every_legacy_type_and_version_has_a_mapper_and_every_canonical_event_is_produced() -> None:
    assert set(MAPPERS) == set(spec.SPECS) == set(EXPECTED)
    produced = {ce_type for _, ce_type, _ in EXPECTED.values()}
    assert len(produced) == 17  # 7 conversation + 4 message + 3 user + 3 compliance events


@pytest.mark.parametrize(("event_type", "version"), sorted(spec.SPECS))
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_type_version_and_encoding(event_type: str, version: int, encoding: str) -> None:
    topic, ce_type, fields = EXPECTED[(event_type, version)]
    out = records(legacy_payload(event_type, version, encoding))
    first = out[0]
    assert (first.topic, first.ce_type) == (topic, "carryover." + ce_type)
    assert (first.tenant_id, first.key, first.ce_time_ms) == (ACME, ACME.encode(), T_MS)
    event = inner(first)
    assert {name: getattr(event, name) for name in fields} == fields
    assert event.tenant_id == ACME and event.event_id == first.ce_id
    assert event.event_time.ToMilliseconds() == T_MS
    assert (event.provenance.source, event.provenance.source_id, event.provenance.source_message_id) == (
        "sqs",
        "https://sqs/q-acme",
        "sqs-msg-1",
    )
    assert (event.provenance.legacy_type, event.provenance.legacy_version) == (event_type, version)
    assert len({r.ce_id for r in out}) == len(out)
    if event_type in ("MESSAGE_SENT", "MESSAGE_EDITED"):
        assert first.encryption_key_id == event.text.key_id == "acme-bank/v2"  # the CURRENT key
        assert open_text(event) == "Hi @123 see this #deal"
        assert [(m.user_id, m.display_name) for m in event.mentions] == [("123", "")]
        assert list(event.hashtags) == ["deal"]
        assert [(link.url, link.text) for link in event.links] == [("https://x", "this")]
    else:
        assert first.encryption_key_id is None


def test_room_created_v2_lists_its_members_as_member_joined_events() -> None:
    out = records(legacy_payload("ROOM_CREATED", 2, "json"))
    assert [r.ce_type.rsplit(".", 1)[1] for r in out] == [
        "ConversationCreated",
        "MemberJoined",
        "MemberJoined",
    ]
    joined = [(inner(r).user_id, inner(r).role, inner(r).actor_user_id) for r in out[1:]]
    assert joined == [("1003", MEMBER_ROLE_OWNER, "1003"), ("1005", MEMBER_ROLE_MEMBER, "1003")]


def test_optional_fields_fall_back_sensibly() -> None:
    attrs = {"conversation_id": ROOM, "user_id": "1005"}
    joined = inner(records(legacy_payload("USER_JOINED_ROOM", 1, "json", attrs=attrs))[0])
    assert joined.actor_user_id == "1005" and joined.role == MEMBER_ROLE_MEMBER  # self-join
    deactivated = records(
        legacy_payload(
            "ROOM_DEACTIVATED",
            1,
            "json",
            occurred_ms=None,
            attrs={"conversation_id": ROOM, "actor_user_id": "1"},
        )
    )
    assert deactivated[0].ce_time_ms == T_MS + 5000  # no legacy timestamp: received_at


def test_replay_is_byte_identical_and_ids_follow_the_source_message() -> None:
    payload = legacy_payload("MESSAGE_SENT", 2, "encrypted-json")
    first, again = records(payload), records(payload)
    assert [r.envelope.SerializeToString() for r in first] == [r.envelope.SerializeToString() for r in again]
    other = records(payload, headers(message_id="sqs-msg-2"))
    assert other[0].ce_id != first[0].ce_id
    assert inner(other[0]).text.ciphertext[:12] != inner(first[0]).text.ciphertext[:12]
    no_id = headers(message_id="")
    assert records(payload, no_id)[0].ce_id == records(payload, no_id)[0].ce_id != first[0].ce_id


def test_tenant_from_payload_when_the_header_is_empty() -> None:
    out = records(legacy_payload("USER_CREATED", 2, "protobuf", tenant=GLOBEX), headers(tenant=""))
    assert out[0].tenant_id == GLOBEX and inner(out[0]).tenant_id == GLOBEX


def test_header_tenant_when_the_payload_has_none() -> None:
    out = records(legacy_payload("MESSAGE_SENT", 1, "json", tenant=None), headers(tenant=GLOBEX))
    assert out[0].tenant_id == GLOBEX and out[0].encryption_key_id == "globex/v1"
    assert open_text(inner(out[0]), GLOBEX) == "Hi @123 see this #deal"


@pytest.mark.parametrize(
    ("payload", "hdrs", "reason", "says"),
    [
        (
            legacy_payload("USER_CREATED", 2, "json", tenant=GLOBEX),
            headers(ACME),
            "tenant_mismatch",
            "globex",
        ),
        (
            legacy_payload("USER_CREATED", 2, "encrypted-json", tenant=None, wrapper_tenant=GLOBEX),
            headers(ACME),
            "tenant_mismatch",
            "encryption wrapper",
        ),
        (
            legacy_payload("USER_CREATED", 2, "encrypted-json", tenant=GLOBEX, wrapper_tenant=ACME),
            headers(ACME),
            "tenant_mismatch",
            "decrypted payload",
        ),
        (legacy_payload("USER_CREATED", 2, "json", tenant=None), headers(""), "missing_tenant", "tenant"),
        (
            legacy_payload("USER_CREATED", 2, "encrypted-protobuf", tenant=None, wrapper_tenant=""),
            headers(""),
            "missing_tenant",
            "header is empty",
        ),
        # globex's ciphertext replayed into acme's queue, wrapper relabelled: acme has no globex key
        (
            legacy_payload(
                "MESSAGE_SENT", 2, "encrypted-json", tenant=None, wrapper_tenant=ACME, key_owner=GLOBEX
            ),
            headers(ACME),
            "unknown_key_id",
            "no live key 'globex/v1'",
        ),
        # a tenant without keys cannot have message text encrypted
        (
            legacy_payload("MESSAGE_SENT", 2, "json", tenant="initech"),
            headers(""),
            "unknown_key_id",
            "initech",
        ),
        (
            codec.encode_encrypted(ACME, "acme-bank/v9", b"\x00" * 40),
            headers(),
            "unknown_key_id",
            "acme-bank/v9",
        ),
        (
            codec.encode_encrypted(ACME, "acme-bank/v1", b"\x00" * 40),
            headers(),
            "decrypt_failed",
            "authenticate",
        ),
        (b"\x00\xff garbage", headers(), "malformed", "neither JSON"),
        (b'{"type": "VOICE_CALL_STARTED"}', headers(), "unknown_type", "VOICE_CALL_STARTED"),
        (b'{"type": "ROOM_UPDATED", "version": 3}', headers(), "unsupported_version", "version 3"),
        (
            legacy_payload(
                "ROOM_DEACTIVATED",
                1,
                "json",
                occurred_ms=None,
                attrs={"conversation_id": ROOM, "actor_user_id": "1"},
            ),
            {"tenant": ACME.encode()},
            "malformed",
            "no event time",
        ),
        (legacy_payload("USER_CREATED", 2, "json"), headers("acme bank"), "malformed", "tenant header"),
        (
            legacy_payload("USER_CREATED", 2, "json", tenant="bad/tenant"),
            headers(""),
            "malformed",
            "not valid",
        ),
        (legacy_payload("USER_CREATED", 2, "json"), {"tenant": b"\xff"}, "malformed", "UTF-8"),
        (
            legacy_payload(
                "LEGAL_HOLD_SET", 2, "json", attrs={"hold_id": "h", "reason": "r", "actor_user_id": "1"}
            ),
            headers(),
            "malformed",
            "custodian",
        ),
    ],
    ids=lambda value: value[:24].decode(errors="replace") if isinstance(value, bytes) else None,
)
def test_rejections_name_the_reason_and_say_what_to_fix(
    payload: bytes, hdrs: dict[str, bytes], reason: str, says: str
) -> None:
    outcome = rejected(payload, hdrs)
    assert outcome.reason == reason and outcome.reason in REASONS
    assert says in outcome.error
    for _, keys in KEYS.values():
        for _, key in keys:
            assert key.hex() not in outcome.error and repr(key)[2:20] not in outcome.error


def test_tampered_ciphertext_never_leaks_plaintext() -> None:
    wrapper = json.loads(legacy_payload("MESSAGE_SENT", 2, "encrypted-json"))
    blob = bytearray(base64.b64decode(wrapper["ciphertext"]))
    blob[20] ^= 0x01
    wrapper["ciphertext"] = base64.b64encode(bytes(blob)).decode()
    outcome = rejected(json.dumps(wrapper).encode())
    assert outcome.reason == "decrypt_failed" and "messageML" not in outcome.error


# ---- properties ----

TENANTS = st.from_regex(r"\A[a-z][a-z0-9-]{1,20}\Z")
TYPE_VERSIONS = st.sampled_from(sorted(spec.SPECS))


def ring_for(*tenants: str) -> Keyring:
    """Two keys per tenant, ids prefixed with the tenant, distinct bytes per tenant."""
    return Keyring.static(
        key_set(
            {
                t: (
                    f"{t}/v2",
                    [(f"{t}/v1", (t.encode() * 32)[:32]), (f"{t}/v2", (t.encode()[::-1] * 32)[:32])],
                )
                for t in tenants
            }
        )
    )


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    payload=st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda d: json.dumps(d).encode(),
            st.dictionaries(
                st.sampled_from(
                    [
                        "type",
                        "eventType",
                        "version",
                        "schemaVersion",
                        "tenantId",
                        "podId",
                        "streamId",
                        "conversation",
                        "keyId",
                        "ciphertext",
                        "timestamp",
                        "occurredAt",
                        "members",
                        "userId",
                    ]
                ),
                st.recursive(
                    st.none()
                    | st.booleans()
                    | st.integers()
                    | st.text(max_size=20)
                    | st.sampled_from(sorted(spec.TYPES)),
                    lambda inner: (
                        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
                    ),
                    max_leaves=8,
                ),
                max_size=8,
            ),
        ),
    ),
    hdrs=st.dictionaries(
        st.sampled_from(["tenant", "source", "source_message_id", "received_at", "x"]),
        st.binary(max_size=20),
        max_size=5,
    ),
)
def test_never_raises_on_garbage(payload: bytes, hdrs: dict[str, bytes]) -> None:
    outcome = normalize(payload, hdrs, RING)
    assert isinstance(outcome, Rejected | list)
    if isinstance(outcome, Rejected):
        assert outcome.reason in REASONS and outcome.error


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    tenant=TENANTS,
    other=TENANTS,
    type_version=TYPE_VERSIONS,
    encoding=st.sampled_from(ENCODINGS),
    header_has_tenant=st.booleans(),
)
def test_tenant_id_is_preserved(
    tenant: str, other: str, type_version: tuple[str, int], encoding: str, header_has_tenant: bool
) -> None:
    keys = ring_for(tenant, other) if other != tenant else ring_for(tenant)
    attrs = attrs_for(*type_version)
    payload = _payload_with_ring(type_version, encoding, tenant, attrs, keys)
    out = normalize(payload, headers(tenant if header_has_tenant else ""), keys)
    assert isinstance(out, list) and out
    for record in out:
        assert (
            record.tenant_id == tenant and record.key == tenant.encode() and inner(record).tenant_id == tenant
        )


def _payload_with_ring(
    type_version: tuple[str, int],
    encoding: str,
    tenant: str,
    attrs: Mapping[str, spec.AttrValue],
    keys: Keyring,
    *,
    key_owner: str | None = None,
    wrapper_tenant: str | None = None,
) -> bytes:
    encode = codec.encode_protobuf if encoding.endswith("protobuf") else codec.encode_json
    body = encode(*type_version, attrs, tenant_id=tenant, occurred_ms=T_MS)
    if not encoding.startswith("encrypted"):
        return body
    owner = key_owner or tenant
    key_id = f"{owner}/v1"
    sealed_for = wrapper_tenant or tenant
    blob = aead.encrypt(keys.decryption_key(owner, key_id), body, tenant_id=sealed_for, key_id=key_id)
    return codec.encode_encrypted(sealed_for, key_id, blob)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    tenants=st.lists(TENANTS, min_size=2, max_size=2, unique=True),
    type_version=st.sampled_from(
        [
            ("MESSAGE_SENT", 1),
            ("MESSAGE_SENT", 2),
            ("MESSAGE_EDITED", 1),
            ("MESSAGE_EDITED", 2),
            ("USER_CREATED", 2),
        ]
    ),
    encoding=st.sampled_from(ENCODINGS),
    header_owner=st.integers(0, 2),
    payload_owner=st.integers(0, 2),
    key_owner=st.integers(0, 1),
    wrapper_owner=st.integers(0, 1),
)
def test_no_record_of_one_tenant_carries_another_tenants_key_id(
    tenants: list[str],
    type_version: tuple[str, int],
    encoding: str,
    header_owner: int,
    payload_owner: int,
    key_owner: int,
    wrapper_owner: int,
) -> None:
    keys = ring_for(*tenants)
    pick = [*tenants, ""]
    payload_tenant = pick[payload_owner] or tenants[0]
    payload = _payload_with_ring(
        type_version,
        encoding,
        payload_tenant,
        attrs_for(*type_version),
        keys,
        key_owner=tenants[key_owner],
        wrapper_tenant=tenants[wrapper_owner],
    )
    out = normalize(payload, headers(pick[header_owner]), keys)
    if isinstance(out, Rejected):
        return
    for record in out:
        own = set(keys.key_ids(record.tenant_id))
        event = inner(record)
        if record.encryption_key_id is not None:
            assert record.encryption_key_id in own and event.text.key_id == record.encryption_key_id
        if "text" in event.DESCRIPTOR.fields_by_name:
            assert event.text.key_id in own
        if pick[header_owner]:
            assert record.tenant_id == pick[header_owner]


def test_an_unexpected_internal_error_becomes_a_safe_rejection() -> None:
    class Broken:
        def decryption_key(self, tenant_id: str, key_id: str) -> bytes:
            raise RuntimeError("secret-key-material")

        def current_key(self, tenant_id: str) -> tuple[str, bytes]:
            raise RuntimeError("secret-key-material")

    outcome = normalize(legacy_payload("MESSAGE_SENT", 1, "json"), headers(), Broken())
    assert isinstance(outcome, Rejected) and outcome.reason == "malformed"
    assert "secret" not in outcome.error and "RuntimeError" in outcome.error


def test_envelope_is_a_protobuf_message() -> None:
    assert isinstance(records(legacy_payload("USER_CREATED", 1, "json"))[0].envelope, Message)
