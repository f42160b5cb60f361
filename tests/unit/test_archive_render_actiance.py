"""app.archive.render_actiance: every transcript is valid against docs/archive/actiance-transcript.xsd,
carries participants at start and end, entered/left, messages and updates (edits, suppressions, ...) in
order with the exact text, marks or redacts suppressed messages, and is byte-identical for the same input
(examples + hypothesis over arbitrary text and names)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import cache

import pytest
import xmlschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.archive.render_actiance import SCHEMA_PATH, render_actiance
from app.archive.window import conversation_window
from app.crypto.errors import DecryptError, UnknownKeyError
from tests.unit.test_archive_builders import (
    DAY,
    HOUR,
    T0,
    Keys,
    desk_window,
    directory,
    joined,
    sent,
    state_of,
)


@cache
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(SCHEMA_PATH))


def _valid(data: bytes) -> ET.Element:
    schema().validate(data.decode("utf-8"))
    return ET.fromstring(data)


def test_the_desk_transcript_is_valid_and_complete() -> None:
    root = _valid(render_actiance(desk_window(), Keys()))
    conversation = root.find("Conversation")
    assert conversation is not None and conversation.get("Perspective") == "trading"
    assert conversation.findtext("RoomID") == "q83vEjRWeJCrze8SNFZ4kA"
    assert conversation.findtext("StartTimeUTC") == str(T0 // 1000)
    assert conversation.findtext("EventCount") == "10"
    at_start = [p.findtext("LoginName") for p in conversation.iterfind("ParticipantsAtStart/Participant")]
    at_end = [p.findtext("Role") for p in conversation.iterfind("ParticipantsAtEnd/Participant")]
    assert at_start == ["u1", "u2"] and at_end == ["owner", "owner"]
    body = [
        (child.tag, child.get("Type"), child.findtext("EventID"))
        for child in conversation
        if child.tag in ("Message", "Update", "ParticipantEntered", "ParticipantLeft")
    ]
    assert body == [
        ("Message", None, "e10"),
        ("Message", None, "e11"),
        ("Update", "Edited", "e12"),
        ("Update", "ReactionAdded", "e13"),
        ("ParticipantEntered", None, "e14"),
        ("Message", None, "e15"),
        ("Message", None, "e16"),
        ("Update", "Suppressed", "e17"),
        ("Update", "RoleChanged", "e18"),
        ("ParticipantLeft", None, "e19"),
    ]
    contents = [m.findtext("Content") for m in conversation.iterfind("Message")]
    assert contents == [
        "Morning @bob, EUR/USD 1.0842 #fx",
        "line one\nline two & <three>",
        "héllo — naïve ünïcödé 日本語",
        "inside info",
    ]
    edit = conversation.find("Update[@Type='Edited']")
    assert edit is not None and edit.findtext("Content") == "Morning @bob, EUR/USD 1.0843 #fx"
    suppression = conversation.find("Update[@Type='Suppressed']")
    assert suppression is not None
    assert (suppression.findtext("MessageID"), suppression.findtext("Reason")) == ("m4", "MNPI")
    assert suppression.findtext("LoginName") == "u9"
    entered = conversation.find("ParticipantEntered")
    assert entered is not None and entered.findtext("ActorLoginName") == "u1"
    assert entered.findtext("DisplayName") == 'Carol "CJ" O\'Neil'


def test_suppressed_messages_are_marked_and_redacted_only_by_policy() -> None:
    kept = _valid(render_actiance(desk_window(), Keys()))
    message = kept.find("Conversation/Message[MessageID='m4']")
    assert message is not None and message.get("Suppressed") == "true" and message.get("Redacted") is None
    assert message.findtext("Content") == "inside info"
    redacted = _valid(render_actiance(desk_window(), Keys(), redact_suppressed=True))
    message = redacted.find("Conversation/Message[MessageID='m4']")
    assert message is not None and message.get("Redacted") == "true" and message.find("Content") is None
    others = redacted.find("Conversation/Message[MessageID='m1']")
    assert others is not None and others.findtext("Content") is not None and others.get("Suppressed") is None


def test_same_input_same_bytes() -> None:
    assert render_actiance(desk_window(), Keys()) == render_actiance(desk_window(), Keys())
    assert render_actiance(desk_window("sales"), Keys()) != render_actiance(desk_window(), Keys())


def test_text_is_decrypted_with_the_tenants_key_only() -> None:
    with pytest.raises(UnknownKeyError):
        render_actiance(desk_window(), Keys(key_id="another-key"))
    with pytest.raises(DecryptError):
        render_actiance(desk_window(), Keys(key=bytes(32)))


def test_the_window_holds_no_plaintext() -> None:
    assert b"inside info" not in repr(desk_window()).encode()


def test_a_document_that_breaks_the_schema_is_refused() -> None:
    data = (
        render_actiance(desk_window(), Keys())
        .replace(b"<RoomID>", b"<Room>")
        .replace(b"</RoomID>", b"</Room>")
    )
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        schema().validate(data.decode())


_TEXT = st.text(st.characters(codec="utf-8"), max_size=60)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(_TEXT, min_size=1, max_size=4), name=_TEXT, unit=_TEXT.filter(str.strip))
def test_any_text_and_names_give_a_valid_deterministic_transcript(
    texts: list[str], name: str, unit: str
) -> None:
    events = [joined("j", T0 - HOUR, "u1")] + [sent(f"s{i}", T0 + i, "u1", t) for i, t in enumerate(texts)]
    book = directory({"u1": [(0, unit)]}, {"u1": (name, "")})
    window = conversation_window(state_of(events), book, unit, DAY, events)
    assert window is not None
    data = render_actiance(window, Keys())
    assert data == render_actiance(window, Keys())
    root = _valid(data)
    contents = [m.findtext("Content") or "" for m in root.iterfind("Conversation/Message")]
    assert contents == [_as_xml_keeps_it(t) for t in texts]
    conversation = root.find("Conversation")
    assert conversation is not None and conversation.get("Perspective") == _as_xml_keeps_it(unit)


def _as_xml_keeps_it(text: str) -> str:
    """The text a parser reads back: characters XML cannot carry become U+FFFD."""
    return "".join(
        "\ufffd" if (ord(c) < 32 and c not in "\t\n\r") or c in "\ufffe\uffff" else c for c in text
    )
