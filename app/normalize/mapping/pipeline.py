"""One staging record -> its canonical records, or the reason it is rejected (pure; never raises).

Steps: tell the encoding apart; decrypt an encrypted wrapper with the tenant's key (the tenant comes from
the ``tenant`` header and/or the payload; if both are present they must agree); decode the legacy event;
map it by (type, version); give each canonical event a deterministic id (uuid5 over tenant, source message
id — or the payload's hash — and the event's index); re-encrypt message text with the tenant's *current*
key using a nonce derived from that id, so a replay produces identical bytes.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from google.protobuf.message import Message

from app.crypto import aead
from app.crypto.errors import CryptoError
from app.crypto.keyring import KeyLookup
from app.normalize.mapping import collaboration, compliance, identity
from app.normalize.mapping.context import EventContext, Mapper
from models.canonical.carryover.common.v1.encrypted_text_pb2 import EncryptedText
from models.canonical.carryover.common.v1.provenance_pb2 import Provenance
from models.legacy.codec import (
    EncryptedPayload,
    LegacyEvent,
    LegacyFormatError,
    decode_payload,
    decode_plaintext,
)

MAPPERS: dict[tuple[str, int], Mapper] = {**collaboration.MAPPERS, **identity.MAPPERS, **compliance.MAPPERS}
"""Every legacy (type, version) carryover maps."""

EVENT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://carryover/normalize/event-id/v1")
_EVENT_ID_PREFIX = EVENT_ID_NAMESPACE.bytes
_UUID_VARIANT = {f"{nibble:x}": f"{nibble & 0x3 | 0x8:x}" for nibble in range(16)}
"""The hex digit of a UUID's variant nibble: RFC 4122 variant (10xx) over the hash's two low bits."""
TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
REASONS = frozenset(
    {
        "malformed",
        "unknown_type",
        "unsupported_version",
        "unknown_key_id",
        "decrypt_failed",
        "missing_tenant",
        "tenant_mismatch",
    }
)
"""Every dead-letter reason :func:`normalize` gives."""


@dataclass(frozen=True)
class CanonicalRecord:
    """One record for a canonical topic: key is the tenant id; envelope the topic's oneof message."""

    topic: str
    key: bytes
    envelope: Message
    ce_type: str
    ce_id: str
    ce_time_ms: int
    tenant_id: str
    encryption_key_id: str | None


@dataclass(frozen=True)
class Rejected:
    """Why a staging record could not be normalized: a dead-letter reason slug and a safe explanation."""

    reason: str
    error: str


class _Reject(Exception):
    def __init__(self, reason: str, error: str) -> None:
        super().__init__(error)
        self.reason = reason


def uuid5_text(namespace: bytes, name: str) -> str:
    """``str(uuid.uuid5(UUID(bytes=namespace), name))`` without building UUID objects: SHA-1 over the
    namespace bytes and the UTF-8 name, version 5 and the RFC 4122 variant set, formatted 8-4-4-4-12."""
    text = hashlib.sha1(namespace + name.encode()).hexdigest()  # noqa: S324 - RFC 4122 version 5
    return f"{text[:8]}-{text[8:12]}-5{text[13:16]}-{_UUID_VARIANT[text[16]]}{text[17:20]}-{text[20:32]}"


def _header(headers: Mapping[str, bytes], name: str) -> str:
    raw = headers.get(name) or b""
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise _Reject("malformed", f"header {name!r} is not valid UTF-8") from None


def _checked_tenant(tenant: str, where: str) -> str:
    if not TENANT_ID.match(tenant):
        raise _Reject("malformed", f"tenant id in {where} is not valid (letters, digits, . _ : -; up to 128)")
    return tenant


def _resolve_tenant(header_tenant: str | None, payload_tenant: str | None, where: str) -> str:
    if header_tenant and payload_tenant and header_tenant != payload_tenant:
        raise _Reject(
            "tenant_mismatch",
            f"{where} claims tenant {payload_tenant[:128]!r} but the record came from tenant "
            f"{header_tenant!r}; fix the source-to-tenant routing or the publisher",
        )
    tenant = header_tenant or payload_tenant
    if not tenant:
        raise _Reject(
            "missing_tenant", "no tenant: the 'tenant' header is empty and the payload carries no tenant id"
        )
    return _checked_tenant(tenant, where if payload_tenant and not header_tenant else "the tenant header")


def _decode(payload: bytes, header_tenant: str | None, keys: KeyLookup) -> tuple[str, LegacyEvent]:
    decoded = decode_payload(payload)
    if isinstance(decoded, EncryptedPayload):
        tenant = _resolve_tenant(header_tenant, decoded.tenant_id, "the encryption wrapper")
        key = keys.decryption_key(tenant, decoded.key_id)
        plaintext = aead.decrypt(key, decoded.ciphertext, tenant_id=tenant, key_id=decoded.key_id)
        event = decode_plaintext(plaintext)
        return _resolve_tenant(tenant, event.tenant_id, "the decrypted payload"), event
    return _resolve_tenant(header_tenant, decoded.tenant_id, "the payload"), decoded


def _received_at(headers: Mapping[str, bytes]) -> int | None:
    value = _header(headers, "received_at")
    return int(value) if value.isdigit() and len(value) <= 15 else None


def publication_id(headers: Mapping[str, bytes]) -> str:
    """The id of the legacy publication a staging record carries, scoped so that ids from different tenants
    and sources never meet: ``tenant|kind|source|message id``.

    When SNS fanned the publication into SQS it is the SNS message id within its topic (SNS may deliver one
    publication twice, as two SQS messages); else the source message id within its queue or subscription
    (Pub/Sub numbers messages per topic; a raw SQS body can claim any id). Empty when the record has no
    message id. ce_id and the normalize agent's dedupe are built on it, so every copy of a publication is
    one event and no publication is ever taken for another's copy. Never raises (headers that are not
    text give no id; :func:`normalize` dead-letters such a record).
    """
    return _publication_id(lambda name: _header(headers, name))


def _publication_id(header: Callable[[str], str]) -> str:
    """:func:`publication_id` over a header reader (:func:`_header` or a memo of it)."""
    try:
        tenant = header("tenant")
        sns_id = header("sns_message_id")
        if sns_id:
            return f"{tenant}|sns|{header('sns_topic_arn')}|{sns_id}"
        message_id = header("source_message_id")
        if not message_id:
            return ""
        return f"{tenant}|{header('source')}|{header('source_id')}|{message_id}"
    except _Reject:
        return ""


def _header_memo(headers: Mapping[str, bytes]) -> Callable[[str], str]:
    """:func:`_header` that decodes each header once (a header that is not text raises every time)."""
    decoded: dict[str, str] = {}

    def header(name: str) -> str:
        text = decoded.get(name)
        if text is None:
            text = decoded[name] = _header(headers, name)
        return text

    return header


def _normalize(payload: bytes, headers: Mapping[str, bytes], keys: KeyLookup) -> list[CanonicalRecord]:
    header = _header_memo(headers)
    header_tenant = header("tenant") or None
    if header_tenant is not None:
        _checked_tenant(header_tenant, "the tenant header")
    tenant, event = _decode(payload, header_tenant, keys)
    occurred = event.occurred_ms if event.occurred_ms is not None else _received_at(headers)
    if occurred is None:
        raise _Reject(
            "malformed", f"{event.type} v{event.version} has no event time and no received_at header"
        )
    source_message_id = header("source_message_id")
    basis = _publication_id(header) or "sha256:" + hashlib.sha256(payload).hexdigest()

    event_ids: dict[int, str] = {}

    def event_id(index: int) -> str:
        known = event_ids.get(index)
        if known is None:
            known = event_ids[index] = uuid5_text(_EVENT_ID_PREFIX, f"{tenant}\n{basis}\n{index}")
        return known

    sealed_with: dict[int, str] = {}

    def seal(index: int, text: str) -> EncryptedText:
        key_id, key = keys.current_key(tenant)
        sealed_with[index] = key_id
        blob = aead.seal_deterministic(
            key, text.encode(), tenant_id=tenant, key_id=key_id, context=event_id(index)
        )
        return EncryptedText(key_id=key_id, ciphertext=blob)

    provenance = Provenance(
        source=header("source"),
        source_id=header("source_id"),
        source_message_id=source_message_id,
        legacy_type=event.type,
        legacy_version=event.version,
    )
    context = EventContext(tenant, occurred, provenance, event_id, seal)
    records = []
    for index, mapped in enumerate(MAPPERS[(event.type, event.version)](event, context)):
        inner = getattr(mapped.envelope, str(mapped.envelope.WhichOneof("event")))
        records.append(
            CanonicalRecord(
                topic=mapped.topic,
                key=tenant.encode(),
                envelope=mapped.envelope,
                ce_type=inner.DESCRIPTOR.full_name,
                ce_id=event_id(index),
                ce_time_ms=occurred,
                tenant_id=tenant,
                encryption_key_id=sealed_with.get(index),
            )
        )
    return records


def normalize(
    payload: bytes, headers: Mapping[str, bytes], keys: KeyLookup
) -> list[CanonicalRecord] | Rejected:
    """The canonical records of one staging record, or why it goes to the dead-letter topic. Never raises."""
    try:
        return _normalize(bytes(payload), headers, keys)
    except (_Reject, LegacyFormatError, CryptoError) as exc:
        return Rejected(exc.reason, str(exc))
    except Exception as exc:  # noqa: BLE001 - never raise; the type only, values could be sensitive
        return Rejected(
            "malformed", f"could not be normalized ({type(exc).__name__}); keep the dead letter and report it"
        )
