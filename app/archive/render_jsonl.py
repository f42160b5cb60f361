"""JSON Lines of one conversation for one window: one JSON object per line (pure, deterministic bytes).

Every line stands alone: it names the tenant, business unit, conversation and window it belongs to
(``tenant``, ``business_unit``, ``conversation_id``, ``window_start_ms``, ``window_end_ms``) and its
``record``:

* first line, ``"window_start"``: ``conversation_name``, ``conversation_kind`` and ``participants`` (the
  members at the window's start: ``user_id``, ``display_name``, ``email``, ``role``, ``business_unit``);
* one ``"event"`` line per event of the window, in the window's order: ``event_id``, ``event_type`` (the
  fact kind: ``message_sent``, ``message_edited``, ``message_suppressed``, ``member_joined``, ...),
  ``time_ms``, ``time`` (ISO 8601 UTC), and the fields of :class:`app.archive.records.EventRecord` the event
  has (``user_id``, ``actor_user_id``, ``message_id``, ``parent_message_id``, ``text``, ``reason``,
  ``role``, ``old_role``, ``emoji``, ``name``, ``mentions``, ``hashtags``; empty ones left out), plus
  ``suppressed: true`` / ``redacted: true`` when they apply;
* last line, ``"window_end"``: the members at the window's end (``participants``) and ``event_count``.

Text is exact (JSON escapes every character). Keys are sorted, separators compact, non-ASCII written as
UTF-8 (a line holding a lone surrogate, which UTF-8 cannot carry, is written with ``\\u`` escapes instead),
lines end with ``\\n``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from app.archive.records import DecryptionKeys, EventRecord, event_records, iso_utc
from app.archive.window import ConversationWindow, Participant


def _participant(p: Participant) -> dict[str, Any]:
    return {
        "user_id": p.person.user_id,
        "display_name": p.person.display_name,
        "email": p.person.email,
        "role": p.role,
        "business_unit": p.business_unit,
    }


def _event(record: EventRecord) -> dict[str, Any]:
    fields = {k: v for k, v in asdict(record).items() if v not in ("", (), None, False)}
    if record.text is not None:
        fields["text"] = record.text
    fields["mentions"] = list(record.mentions) if record.mentions else None
    fields["hashtags"] = list(record.hashtags) if record.hashtags else None
    fields["time"] = iso_utc(record.time_ms)
    fields["record"] = "event"
    return {k: v for k, v in fields.items() if v is not None}


def _line(context: dict[str, Any], fields: dict[str, Any]) -> bytes:
    doc = {**context, **fields}
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    try:
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # a lone surrogate (a bad name in the directory): escape the line instead
        return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("ascii") + b"\n"


def render_jsonl(
    window: ConversationWindow, keys: DecryptionKeys, *, redact_suppressed: bool = False
) -> bytes:
    """The JSON Lines of ``window`` (see the module docstring), text decrypted with ``keys``."""
    context = {
        "tenant": window.tenant,
        "business_unit": window.business_unit,
        "conversation_id": window.conversation_id,
        "window_start_ms": window.window.start_ms,
        "window_end_ms": window.window.end_ms,
    }
    records = event_records(window, keys, redact_suppressed=redact_suppressed)
    lines = [
        _line(
            context,
            {
                "record": "window_start",
                "conversation_name": window.conversation_name,
                "conversation_kind": window.conversation_kind,
                "participants": [_participant(p) for p in window.participants_at_start],
            },
        )
    ]
    lines += [_line(context, _event(record)) for record in records]
    lines.append(
        _line(
            context,
            {
                "record": "window_end",
                "participants": [_participant(p) for p in window.participants_at_end],
                "event_count": len(records),
            },
        )
    )
    return b"".join(lines)
