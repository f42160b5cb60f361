"""One RFC 5322 message (EML) per conversation per window, as chat-archive importers take them (pure).

Like Symphony's EML export, a conversation's window becomes one e-mail whose headers say who took part and
whose ``text/plain`` body is the transcript:

* ``From``: the first sender of a message in the window; else the first participant at the window's start,
  at its end, or named by an event (by user id). ``To``: every other person of the window — participants
  at start and end, members who entered or left, senders, editors, reacting users — sorted by user id;
  left out when there is nobody else (RFC 5322 requires only ``From`` and ``Date``).
  Addresses are the directory's e-mail addresses; a user without a usable one gets
  ``<user id>@<tenant>.carryover.invalid`` (the reserved ``.invalid`` domain: it never delivers). Display
  names are the directory's, else the user id.
* ``Date``: the event time of the window's last event (the transcript is complete then), in UTC.
* ``Message-ID``: ``<sha256 of (tenant, business unit, window, conversation)>@carryover.archive``, so a
  re-run gives the same id. ``Subject``: ``"<kind> <name or id>, <start> to <end> UTC"``.
* ``X-Carryover-Tenant``, ``-Business-Unit``, ``-Conversation-Id``, ``-Window`` (the window's label) and
  ``-Event-Count`` say what the message archives.
* The body: UTF-8, quoted-printable; one line per event ``[time] who: what``, message text on the line and
  its further lines (split at any line boundary of :meth:`str.splitlines`) indented by four spaces;
  suppressed messages marked ``[suppressed]`` (and their text left out with the policy's redaction).

Headers are written here, not by :mod:`email`'s generator (which folds some display names and subjects into
forms that its own strict parser reads back with defects or a changed value): display names as quoted
strings when they are printable ASCII, else RFC 2047 ``B`` encoded words (UTF-8); unstructured values
(``Subject``, ``X-Carryover-*``) as they are when printable ASCII, else encoded words; lines folded before
78 characters where a value allows it, and never beyond 998. Control characters and runs of white space in
names and header values become one space (so no input can add a header), names are cut to
:data:`MAX_NAME_CHARACTERS`. Bytes are CRLF-terminated and identical for the same input.
"""

from __future__ import annotations

import base64
import hashlib
import quopri
import re
from datetime import UTC, datetime
from email.utils import format_datetime

from app.archive.records import DecryptionKeys, EventRecord, event_records, iso_utc
from app.archive.window import ConversationWindow, Participant, Person
from app.state.facts import FactKind

MESSAGE_ID_DOMAIN = "carryover.archive"
"""The right-hand side of every ``Message-ID``."""
MAX_NAME_CHARACTERS = 128
"""Display names and the conversation name in ``Subject`` are cut to this many characters."""

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
_ADDRESS = re.compile(rf"^{_DOT_ATOM}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
_ATOM = re.compile(rf"^{_DOT_ATOM}$")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_LABEL = re.compile(r"[^a-z0-9-]+")
_PRINTABLE_ASCII = re.compile(r"^[\x20-\x7e]*$")
_FOLD = "\r\n "
_LINE = 78
_ENCODED_WORD_BYTES = 45
"""UTF-8 bytes per RFC 2047 encoded word: 60 base64 characters, 72 with ``=?utf-8?b?`` and ``?=``."""


def _one_line(value: str, limit: int | None = None) -> str:
    """``value`` with control characters as spaces and white space collapsed, cut to ``limit``."""
    text = " ".join(_CONTROL.sub(" ", value).split())
    return text[:limit].rstrip() if limit else text


def _encoded_words(value: str) -> list[str]:
    """RFC 2047 ``B`` encoded words of ``value``, split between characters, each at most 75 characters."""
    words, chunk = [], b""
    for char in value:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > _ENCODED_WORD_BYTES:
            words.append(chunk)
            chunk = b""
        chunk += encoded
    words.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(w).decode()}?=" for w in words if w]


def _plain(value: str) -> bool:
    """True when ``value`` can be written as it is: printable ASCII, single spaces, no encoded-word look."""
    return (
        bool(_PRINTABLE_ASCII.match(value))
        and value == " ".join(value.split())
        and "=?" not in value
        and all(len(word) <= _LINE - 20 for word in value.split())
    )


def _unstructured(name: str, value: str) -> str:
    """One header line (folded, no final CRLF) with an unstructured ``value``, exact when parsed back."""
    words = value.split(" ") if _plain(value) else _encoded_words(value)
    lines = [f"{name}:"]
    for i, word in enumerate(words):
        if i and len(lines[-1]) + 1 + len(word) > _LINE:
            lines.append("")  # fold before the word, never before the first one
        lines[-1] += f" {word}"
    return "\r\n".join(lines)


def _phrase(value: str) -> str:
    """A display name as an RFC 5322 phrase: a quoted string when ASCII, else encoded words.

    A name of up to 45 UTF-8 bytes is one encoded word, read back exactly by every reader. A longer one is
    split into several, between characters; RFC 2047 readers ignore the white space between them, but
    Python's ``email`` keeps it as a space inside a display name (the body has every name exactly).
    """
    if _PRINTABLE_ASCII.match(value) and "=?" not in value:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return _FOLD.join(_encoded_words(value))


def _tenant_domain(tenant: str) -> str:
    label = _LABEL.sub("-", tenant.lower()).strip("-")[:63].strip("-") or "tenant"
    return f"{label}.carryover.invalid"


def address_of(person: Person, tenant: str) -> str:
    """The address of ``person`` as a header writes it: ``"Display Name" <addr-spec>``."""
    display = _one_line(person.display_name, MAX_NAME_CHARACTERS) or _one_line(
        person.user_id, MAX_NAME_CHARACTERS
    )
    if _ADDRESS.match(person.email) and len(person.email) <= 254:
        addr_spec = person.email
    else:
        local = person.user_id if _ATOM.match(person.user_id) and len(person.user_id) <= 64 else ""
        local = local or "user-" + hashlib.sha256(person.user_id.encode()).hexdigest()[:24]
        addr_spec = f"{local}@{_tenant_domain(tenant)}"
    return f"{_phrase(display)} <{addr_spec}>" if display else addr_spec


def message_id(window: ConversationWindow) -> str:
    """The window's deterministic ``Message-ID``, angle brackets included."""
    parts = (window.tenant, window.business_unit, window.window.label, window.conversation_id)
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]
    return f"<{digest}@{MESSAGE_ID_DOMAIN}>"


def _who(window: ConversationWindow, user_id: str) -> str:
    person = window.person(user_id)
    if not user_id:
        return "(unknown)"
    return f"{person.display_name} ({user_id})" if person.display_name else user_id


def _participant_lines(title: str, participants: tuple[Participant, ...]) -> list[str]:
    lines = [f"{title}:"]
    for p in participants:
        person = p.person
        name = f"{person.display_name} ({person.user_id})" if person.display_name else person.user_id
        details = [f"<{person.email}>"] if person.email else []
        details += [f"role {p.role}"] if p.role else []
        details += [f"business unit {p.business_unit}"] if p.business_unit else []
        lines.append(f"  {name}" + (f", {', '.join(details)}" if details else ""))
    if not participants:
        lines.append("  (none)")
    return lines


def _text_lines(head: str, text: str | None, redacted: bool) -> list[str]:
    if redacted:
        return [f"{head} (text redacted)"]
    parts = (text or "").splitlines() or [""]
    return [f"{head}: {parts[0]}"] + [f"    {part}" for part in parts[1:]]


def _event_lines(window: ConversationWindow, record: EventRecord) -> list[str]:
    kind = FactKind(record.event_type)
    at = f"[{iso_utc(record.time_ms)}]"
    who, actor = _who(window, record.user_id), _who(window, record.actor_user_id)
    mark = " [suppressed]" if record.suppressed else ""
    by = f" by {actor}" if record.actor_user_id and record.actor_user_id != record.user_id else ""
    if kind is FactKind.MESSAGE_SENT:
        reply = f" (reply to {record.parent_message_id})" if record.parent_message_id else ""
        head = f"{at} {who}{mark} message {record.message_id}{reply}"
        return _text_lines(head, record.text, record.redacted)
    if kind is FactKind.MESSAGE_EDITED:
        return _text_lines(
            f"{at} {who}{mark} edited message {record.message_id}", record.text, record.redacted
        )
    if kind is FactKind.MESSAGE_SUPPRESSED:
        reason = f": {record.reason}" if record.reason else ""
        return [f"{at} message {record.message_id} suppressed{by}{reason}"]
    role = f", role {record.role}" if record.role else ""
    simple = {
        FactKind.MEMBER_JOINED: f"{who} entered{by}{role}",
        FactKind.MEMBER_LEFT: f"{who} left{by}",
        FactKind.ROLE_CHANGED: f"{who} role {record.old_role or '?'} -> {record.role or '?'}{by}",
        FactKind.REACTION_ADDED: f"{who} reacted {record.emoji} to message {record.message_id}",
        FactKind.REACTION_REMOVED: f"{who} removed reaction {record.emoji} from message {record.message_id}",
        FactKind.CREATED: f"conversation created{by} as {record.name!r}",
        FactKind.UPDATED: f"conversation renamed{by} to {record.name!r}",
        FactKind.DEACTIVATED: f"conversation deactivated{by}",
        FactKind.REACTIVATED: f"conversation reactivated{by}",
    }
    return [f"{at} {line}" for line in simple[kind].splitlines() or [""]]


def transcript(window: ConversationWindow, records: tuple[EventRecord, ...]) -> str:
    """The plain-text transcript of the body (``\\n`` line ends)."""
    name = window.conversation_name
    lines = [
        f"Conversation: {name + ' ' if name else ''}({window.conversation_id}), {window.conversation_kind}",
        f"Tenant: {window.tenant}; business unit: {window.business_unit}",
        f"Window: {iso_utc(window.window.start_ms)} to {iso_utc(window.window.end_ms)} (UTC)",
        "",
        *_participant_lines("Participants at start", window.participants_at_start),
        "",
    ]
    for record in records:
        lines += _event_lines(window, record)
    lines += ["", *_participant_lines("Participants at end", window.participants_at_end), ""]
    lines.append(f"{len(records)} event(s).")
    # names, ids and reasons on one line each (message text was split into lines above)
    text = "\n".join(line.replace("\r", " ").replace("\n", " ") for line in lines) + "\n"
    return _SURROGATE.sub("\ufffd", text)


def _sender_and_recipients(window: ConversationWindow) -> tuple[str, list[str]]:
    senders = [
        e.fact.user_id for e in window.events if e.fact.kind is FactKind.MESSAGE_SENT and e.fact.user_id
    ]
    everyone = sorted(
        {p.person.user_id for p in window.participants_at_start + window.participants_at_end}
        | {
            e.fact.user_id
            for e in window.events
            if e.fact.user_id and e.fact.kind is not FactKind.MESSAGE_SUPPRESSED
        }
    )
    first = senders[0] if senders else ""
    if not first:
        ordered = [p.person.user_id for p in window.participants_at_start + window.participants_at_end]
        first = (ordered or everyone or [""])[0]
    return first, [u for u in everyone if u != first]


def render_eml(window: ConversationWindow, keys: DecryptionKeys, *, redact_suppressed: bool = False) -> bytes:
    """The EML of ``window`` (see the module docstring), text decrypted with ``keys``."""
    records = event_records(window, keys, redact_suppressed=redact_suppressed)
    sender, recipients = _sender_and_recipients(window)
    last_ms = window.events[-1].fact.time_ms if window.events else window.window.end_ms
    name = _one_line(window.conversation_name, MAX_NAME_CHARACTERS) or window.conversation_id
    subject = (
        f"{window.conversation_kind} {name}, {iso_utc(window.window.start_ms)} to "
        f"{iso_utc(window.window.end_ms)} UTC"
    )
    headers = [f"From: {address_of(window.person(sender), window.tenant)}"]
    if recipients:
        addresses = [address_of(window.person(u), window.tenant) for u in recipients]
        headers.append("To: " + ("," + _FOLD).join(addresses))
    headers += [
        f"Date: {format_datetime(datetime.fromtimestamp(last_ms // 1000, tz=UTC))}",
        f"Message-ID: {message_id(window)}",
        _unstructured("Subject", _one_line(subject)),
        _unstructured("X-Carryover-Tenant", _one_line(window.tenant)),
        _unstructured("X-Carryover-Business-Unit", _one_line(window.business_unit)),
        _unstructured("X-Carryover-Conversation-Id", _one_line(window.conversation_id)),
        f"X-Carryover-Window: {window.window.label}",
        f"X-Carryover-Event-Count: {len(records)}",
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
    ]
    body = quopri.encodestring(transcript(window, records).encode("utf-8"))
    return ("\r\n".join(headers) + "\r\n\r\n").encode("ascii") + body.replace(b"\n", b"\r\n")
