"""The renderers' common view of a window's events, message text decrypted (pure).

Each renderer (:mod:`app.archive.render_actiance`, :mod:`app.archive.render_eml`,
:mod:`app.archive.render_jsonl`) calls :func:`event_records` while it renders, with the key lookup it was
given: message text is decrypted there and nowhere else, and never kept beyond the rendered bytes.

Text is the event's ``EncryptedText`` decrypted with the tenant's key (:func:`app.crypto.aead.decrypt`, bound
to tenant and key id) and read as UTF-8; bytes that are not UTF-8 become U+FFFD (the canonical events are
written from text, so this does not happen for events normalize wrote). An unknown key or a ciphertext that
does not authenticate raises (``UnknownKeyError`` / ``DecryptError``): a window is never archived with a
message missing.

When ``redact_suppressed`` is set (the policy's explicit redaction), the text of a message sent or edited in
the window and suppressed by an event of the same window is left out (``text`` None, ``redacted`` True);
otherwise suppressed messages keep their text, marked ``suppressed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from app.archive.window import ArchiveEvent, ConversationWindow, event_field
from app.crypto import aead
from app.state.facts import FactKind

TEXT_KINDS = frozenset({FactKind.MESSAGE_SENT, FactKind.MESSAGE_EDITED})
"""Events that carry message text."""


class DecryptionKeys(Protocol):
    """What the renderers need from a keyring (:class:`app.crypto.keyring.KeyLookup` is one)."""

    def decryption_key(self, tenant_id: str, key_id: str) -> bytes:
        """The live key ``key_id`` of ``tenant_id``; raises UnknownKeyError."""
        ...


@dataclass(frozen=True)
class EventRecord:
    """One event as every format renders it; fields an event does not have are ``''`` / ``()`` / None.

    ``user_id``: the sender, editor, reacting user or member; ``actor_user_id``: who did it when that is
    someone else (who added or removed a member, who suppressed, created or renamed). ``text``: the decrypted
    message text of a sent or edited message (None for other events and when redacted). ``suppressed``: a
    sent or edited message that an event of the same window suppressed. ``name``: the conversation's name
    (created, renamed). ``reason``: why a message was suppressed.
    """

    event_id: str
    event_type: str
    time_ms: int
    user_id: str = ""
    actor_user_id: str = ""
    message_id: str = ""
    parent_message_id: str = ""
    text: str | None = None
    suppressed: bool = False
    redacted: bool = False
    reason: str = ""
    role: str = ""
    old_role: str = ""
    emoji: str = ""
    name: str = ""
    mentions: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()


def decrypt_text(tenant: str, encrypted: Any, keys: DecryptionKeys) -> str:
    """The text of an ``EncryptedText`` of ``tenant``; ``''`` when it holds no ciphertext."""
    if not encrypted.ciphertext:
        return ""
    key_id = str(encrypted.key_id)
    key = keys.decryption_key(tenant, key_id)
    plaintext = aead.decrypt(key, bytes(encrypted.ciphertext), tenant_id=tenant, key_id=key_id)
    return plaintext.decode("utf-8", errors="replace")


def event_record(
    window: ConversationWindow, item: ArchiveEvent, keys: DecryptionKeys, *, redact_suppressed: bool
) -> EventRecord:
    """The :class:`EventRecord` of one event of ``window`` (see the module docstring)."""
    fact = item.fact
    suppressed = fact.kind in TEXT_KINDS and window.is_suppressed(fact.message_id)
    redacted = suppressed and redact_suppressed
    text: str | None = None
    if fact.kind in TEXT_KINDS and not redacted:
        text = decrypt_text(window.tenant, item.event.text, keys)  # type: ignore[attr-defined]
    return EventRecord(
        event_id=fact.event_id,
        event_type=str(fact.kind),
        time_ms=fact.time_ms,
        user_id=fact.user_id,
        actor_user_id=fact.actor_user_id,
        message_id=fact.message_id,
        parent_message_id=str(event_field(item, "parent_message_id")),
        text=text,
        suppressed=suppressed,
        redacted=redacted,
        reason=str(event_field(item, "reason")),
        role=fact.role,
        old_role=fact.old_role,
        emoji=str(event_field(item, "emoji")),
        name=fact.name,
        mentions=tuple(str(m.user_id) for m in event_field(item, "mentions", ())),
        hashtags=tuple(str(h) for h in event_field(item, "hashtags", ())),
    )


def event_records(
    window: ConversationWindow, keys: DecryptionKeys, *, redact_suppressed: bool = False
) -> tuple[EventRecord, ...]:
    """The records of the window's events, in the window's order."""
    return tuple(event_record(window, e, keys, redact_suppressed=redact_suppressed) for e in window.events)


def iso_utc(t_ms: int) -> str:
    """``"2024-03-31T09:00:00.123Z"``: an epoch-ms instant in UTC, ISO 8601 with milliseconds."""
    moment = datetime.fromtimestamp(t_ms // 1000, tz=UTC)
    return f"{moment.strftime('%Y-%m-%dT%H:%M:%S')}.{t_ms % 1000:03d}Z"
