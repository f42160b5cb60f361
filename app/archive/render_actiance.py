"""Actiance-style XML transcript of one conversation for one window (pure, deterministic bytes).

The layout follows the Actiance (Smarsh) chat export that archiving providers import — a ``FileDump`` of
``Conversation`` elements with ``RoomID``, ``StartTimeUTC``, ``ParticipantEntered``, ``Message``,
``ParticipantLeft`` and ``EndTimeUTC`` — and adds what a compliance transcript of carryover needs: the
participants present at the window's start and end, and edits, suppressions, reactions, role changes and the
conversation's lifecycle as ``Update`` records. Its schema is ``docs/archive/actiance-transcript.xsd``
(:data:`SCHEMA_PATH`); every rendered file is valid against it.

Times: ``DateTimeUTC`` / ``StartTimeUTC`` / ``EndTimeUTC`` are seconds since the epoch (as Actiance has them),
``EventTimeMillis`` the exact event time in milliseconds. ``LoginName`` is the user id. A suppressed message
has ``Suppressed="true"``; with the policy's redaction, ``Redacted="true"`` and no ``Content``.

Bytes: UTF-8, ``\\n`` line ends, two-space indentation between elements (never inside text), elements in the
window's event order, optional elements left out when empty. Characters XML 1.0 cannot carry (controls other
than tab, line feed and carriage return; U+FFFE, U+FFFF) are written as U+FFFD; a carriage return is written
``&#13;`` so that it survives parsing. The JSON Lines rendering keeps the exact text.
"""

from __future__ import annotations

import re
from pathlib import Path

from app.archive.records import DecryptionKeys, EventRecord, event_records
from app.archive.window import ConversationWindow, Participant, Person
from app.state.facts import FactKind

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "archive" / "actiance-transcript.xsd"
"""The XSD every rendered transcript is valid against (in the repository, not installed with the package)."""
SCHEMA_VERSION = "1"
"""``FileDump/@version``; a new one for any change of the layout."""

_UPDATE_TYPE = {
    FactKind.MESSAGE_EDITED: "Edited",
    FactKind.MESSAGE_SUPPRESSED: "Suppressed",
    FactKind.REACTION_ADDED: "ReactionAdded",
    FactKind.REACTION_REMOVED: "ReactionRemoved",
    FactKind.ROLE_CHANGED: "RoleChanged",
    FactKind.CREATED: "ConversationCreated",
    FactKind.UPDATED: "ConversationRenamed",
    FactKind.DEACTIVATED: "ConversationDeactivated",
    FactKind.REACTIVATED: "ConversationReactivated",
}
"""``Update/@Type`` of every event that is not a message or a member entering or leaving."""

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_text(value: str) -> str:
    """``value`` escaped as XML character data (see the module docstring for what is replaced)."""
    value = _NOT_XML.sub("\ufffd", value)
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def xml_attribute(value: str) -> str:
    """``value`` escaped for a double-quoted attribute (white space kept as character references)."""
    return xml_text(value).replace('"', "&quot;").replace("\t", "&#9;").replace("\n", "&#10;")


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = ['<?xml version="1.0" encoding="UTF-8"?>']
        self.depth = 0

    def open(self, tag: str, attributes: str = "") -> None:
        self.lines.append(f"{'  ' * self.depth}<{tag}{attributes}>")
        self.depth += 1

    def close(self, tag: str) -> None:
        self.depth -= 1
        self.lines.append(f"{'  ' * self.depth}</{tag}>")

    def leaf(self, tag: str, value: str | int, *, optional: bool = False) -> None:
        if optional and value in ("", None):
            return
        self.lines.append(f"{'  ' * self.depth}<{tag}>{xml_text(str(value))}</{tag}>")

    def bytes(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode("utf-8")


def _person(out: _Writer, person: Person) -> None:
    out.leaf("LoginName", person.user_id)
    out.leaf("DisplayName", person.display_name, optional=True)
    out.leaf("CorporateEmailID", person.email, optional=True)


def _participants(out: _Writer, tag: str, participants: tuple[Participant, ...]) -> None:
    out.open(tag)
    for participant in participants:
        out.open("Participant")
        _person(out, participant.person)
        out.leaf("Role", participant.role, optional=True)
        out.leaf("BusinessUnit", participant.business_unit or "", optional=True)
        out.close("Participant")
    out.close(tag)


def _times(out: _Writer, record: EventRecord) -> None:
    out.leaf("EventID", record.event_id)
    out.leaf("DateTimeUTC", record.time_ms // 1000)
    out.leaf("EventTimeMillis", record.time_ms)


def _marks(record: EventRecord) -> str:
    marks = ' Suppressed="true"' if record.suppressed else ""
    return marks + (' Redacted="true"' if record.redacted else "")


def _event(out: _Writer, window: ConversationWindow, record: EventRecord) -> None:
    kind = FactKind(record.event_type)
    if kind in (FactKind.MEMBER_JOINED, FactKind.MEMBER_LEFT):
        tag = "ParticipantEntered" if kind is FactKind.MEMBER_JOINED else "ParticipantLeft"
        out.open(tag)
        _times(out, record)
        _person(out, window.person(record.user_id))
        out.leaf("Role", record.role, optional=True)
        out.leaf("ActorLoginName", record.actor_user_id, optional=True)
        out.close(tag)
        return
    if kind is FactKind.MESSAGE_SENT:
        out.open("Message", _marks(record))
        _times(out, record)
        _person(out, window.person(record.user_id))
        out.leaf("MessageID", record.message_id)
        out.leaf("ParentMessageID", record.parent_message_id, optional=True)
        if record.text is not None:
            out.leaf("Content", record.text)
        out.close("Message")
        return
    out.open("Update", f' Type="{_UPDATE_TYPE[kind]}"' + _marks(record))
    _times(out, record)
    who = record.user_id or record.actor_user_id
    if who:
        _person(out, window.person(who))
    if record.actor_user_id and record.actor_user_id != who:
        out.leaf("ActorLoginName", record.actor_user_id)
    out.leaf("MessageID", record.message_id, optional=True)
    if record.text is not None:
        out.leaf("Content", record.text)
    out.leaf("Reason", record.reason, optional=True)
    out.leaf("Role", record.role, optional=True)
    out.leaf("OldRole", record.old_role, optional=True)
    out.leaf("Emoji", record.emoji, optional=True)
    out.leaf("ConversationName", record.name, optional=True)
    out.close("Update")


def render_actiance(
    window: ConversationWindow, keys: DecryptionKeys, *, redact_suppressed: bool = False
) -> bytes:
    """The transcript of ``window`` (one ``Conversation`` in a ``FileDump``), text decrypted with ``keys``."""
    out = _Writer()
    out.open("FileDump", f' version="{SCHEMA_VERSION}"')
    out.open("Conversation", f' Perspective="{xml_attribute(window.business_unit)}"')
    out.leaf("RoomID", window.conversation_id)
    out.leaf("ConversationName", window.conversation_name, optional=True)
    out.leaf("ConversationKind", window.conversation_kind)
    out.leaf("Tenant", window.tenant)
    out.leaf("BusinessUnit", window.business_unit)
    out.leaf("StartTimeUTC", window.window.start_ms // 1000)
    out.leaf("StartTimeMillis", window.window.start_ms)
    _participants(out, "ParticipantsAtStart", window.participants_at_start)
    for record in event_records(window, keys, redact_suppressed=redact_suppressed):
        _event(out, window, record)
    _participants(out, "ParticipantsAtEnd", window.participants_at_end)
    out.leaf("EndTimeUTC", window.window.end_ms // 1000)
    out.leaf("EndTimeMillis", window.window.end_ms)
    out.leaf("EventCount", len(window.events))
    out.close("Conversation")
    out.close("FileDump")
    return out.bytes()
