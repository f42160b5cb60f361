"""app.archive.render_eml: one RFC 5322 message per conversation and window, parsed without a defect by
Python's ``email`` package with the strict policy and by mail-parser; headers (From/To/Date/Message-ID/
Subject/X-Carryover-*), the transcript body with exact text, suppression marks and redaction, fallback
addresses, header injection, and byte-identical output (examples + hypothesis)."""

from __future__ import annotations

import email
import email.policy
import unicodedata
from email.message import EmailMessage

import mailparser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.archive.render_eml import message_id, render_eml
from app.archive.window import conversation_window
from tests.unit.test_archive_builders import (
    DAY,
    HOUR,
    T0,
    Keys,
    created,
    desk_window,
    directory,
    joined,
    sent,
    state_of,
)


def _strict(data: bytes) -> EmailMessage:
    """The message as the strict policy reads it; fails on any defect, of the message or a header."""
    message = email.message_from_bytes(data, policy=email.policy.strict)
    assert isinstance(message, EmailMessage)
    assert message.defects == []
    for name, value in message.items():
        assert getattr(value, "defects", ()) == (), (name, value.defects)
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    return message


def _body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


def test_the_desk_message_parses_strictly_with_its_headers() -> None:
    data = render_eml(desk_window(), Keys())
    message = _strict(data)
    assert str(message["From"]) == "Alice Smith <alice@acme.example>"
    assert [a.addr_spec for a in message["To"].addresses] == ["bob@acme.example", "carol@acme.example"]
    assert message["To"].addresses[0].display_name == "Bob Ünver"
    assert message["Date"].datetime.timestamp() * 1000 == T0 + 13 * HOUR  # the last event
    assert message["Message-ID"] == message_id(desk_window())
    assert message["Subject"] == "room FX desk, 2024-03-01T00:00:00.000Z to 2024-03-02T00:00:00.000Z UTC"
    assert message["X-Carryover-Business-Unit"] == "trading"
    assert message["X-Carryover-Window"] == "20240301T000000Z_20240302T000000Z"
    assert message["X-Carryover-Event-Count"] == "10"
    assert message.get_content_type() == "text/plain"


def test_the_body_is_the_transcript() -> None:
    body = _body(_strict(render_eml(desk_window(), Keys())))
    lines = body.splitlines()
    assert "[2024-03-01T09:00:00.000Z] Alice Smith (u1) message m1: Morning @bob, EUR/USD 1.0842 #fx" in lines
    at = lines.index("[2024-03-01T09:00:00.005Z] Bob Ünver (u2) message m2: line one")
    assert lines[at + 1] == "    line two & <three>"
    assert (
        '[2024-03-01T10:00:00.001Z] Carol "CJ" O\'Neil (u3) message m3: héllo — naïve ünïcödé 日本語' in lines
    )
    assert "[2024-03-01T11:00:00.000Z] Bob Ünver (u2) [suppressed] message m4: inside info" in lines
    assert "[2024-03-01T11:00:30.000Z] message m4 suppressed by Officer Dee (u9): MNPI" in lines
    assert '[2024-03-01T13:00:00.000Z] Carol "CJ" O\'Neil (u3) left' in lines
    assert lines[-1] == "10 event(s)."


def test_redaction_only_by_policy() -> None:
    body = _body(_strict(render_eml(desk_window(), Keys(), redact_suppressed=True)))
    assert "inside info" not in body
    assert (
        "[2024-03-01T11:00:00.000Z] Bob Ünver (u2) [suppressed] message m4 (text redacted)"
        in body.splitlines()
    )


def test_mail_parser_reads_it_too() -> None:
    parsed = mailparser.parse_from_bytes(render_eml(desk_window(), Keys()))
    assert parsed.defects == []
    assert parsed.from_ == [("Alice Smith", "alice@acme.example")]
    assert [address for _, address in parsed.to] == ["bob@acme.example", "carol@acme.example"]
    assert parsed.message_id == message_id(desk_window())
    assert "héllo — naïve ünïcödé 日本語" in parsed.body
    assert parsed.headers["X-Carryover-Tenant"] == "acme-bank"


def test_same_input_same_bytes_and_message_id_per_unit() -> None:
    assert render_eml(desk_window(), Keys()) == render_eml(desk_window(), Keys())
    assert message_id(desk_window("sales")) != message_id(desk_window("trading"))


@pytest.mark.parametrize(
    ("user_id", "email_address", "expected"),
    [
        ("u7", "", "u7@acme-bank.carryover.invalid"),
        ("u7", "not an address", "u7@acme-bank.carryover.invalid"),
        ("user 7/ä", "", "user-"),
        ("u7", "seven@desk.acme.example", "seven@desk.acme.example"),
    ],
)
def test_addresses_fall_back_to_the_invalid_domain(user_id: str, email_address: str, expected: str) -> None:
    events = [joined("j", T0 - HOUR, "u1"), joined("j2", T0 - HOUR, user_id), sent("s", T0 + 1, "u1", "hi")]
    book = directory({"u1": [(0, "t")], user_id: [(0, "t")]}, {"u1": ("A", ""), user_id: ("", email_address)})
    window = conversation_window(state_of(events), book, "t", DAY, events)
    assert window is not None
    message = _strict(render_eml(window, Keys()))
    assert message["To"].addresses[0].addr_spec.startswith(expected)
    assert message["From"].addresses[0].addr_spec == "u1@acme-bank.carryover.invalid"


@pytest.mark.parametrize(
    "name",
    ["Bob Ünver", "José María Ñúñez-García", "山田 太郎", 'Zoë "Z" d\'Arc', "a@b, c; <d>", "=?utf-8?q?x?="],
)
def test_display_names_read_back_exactly(name: str) -> None:
    events = [joined("j", T0 - HOUR, "u1"), sent("s", T0 + 1, "u1", "hi")]
    window = conversation_window(
        state_of(events), directory({"u1": [(0, "t")]}, {"u1": (name, "")}), "t", DAY, events
    )
    assert window is not None
    message = _strict(render_eml(window, Keys()))
    assert message["From"].addresses[0].display_name == name
    if not set(name) & set('"<>,;:@'):  # mail-parser re-parses the decoded header: specials get lost
        assert mailparser.parse_from_bytes(render_eml(window, Keys())).from_[0][0] == name


def test_a_name_cannot_add_a_header() -> None:
    events = [joined("j", T0 - HOUR, "u1"), sent("s", T0 + 1, "u1", "hi")]
    book = directory({"u1": [(0, "t")]}, {"u1": ("Eve\r\nBcc: leak@evil.example", "")})
    window = conversation_window(state_of(events), book, "t", DAY, events)
    assert window is not None
    message = _strict(render_eml(window, Keys()))
    assert message["Bcc"] is None
    assert message["From"].addresses[0].display_name == "Eve Bcc: leak@evil.example"


def _one_line(name: str) -> str:
    """What a header keeps of a name: controls as spaces, white space runs as one space, 128 characters."""
    spaced = "".join(" " if unicodedata.category(c) == "Cc" or c in "\u2028\u2029" else c for c in name)
    return " ".join(spaced.split())[:128].rstrip()


_TEXT = st.text(st.characters(codec="utf-8"), max_size=80)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(_TEXT, min_size=1, max_size=4),
    names=st.lists(_TEXT, min_size=2, max_size=2),
    room_name=_TEXT,
)
def test_any_text_and_names_give_a_strictly_valid_deterministic_message(
    texts: list[str], names: list[str], room_name: str
) -> None:
    events = [
        created("c", T0 + 1, name=room_name),
        joined("j", T0 - HOUR, "u1"),
        joined("j2", T0 - HOUR, "u2"),
    ]
    events += [sent(f"s{i}", T0 + i, "u1", t) for i, t in enumerate(texts)]
    book = directory(
        {"u1": [(0, "t")], "u2": [(0, "t")]}, {"u1": (names[0], "a@b.example"), "u2": (names[1], "")}
    )
    window = conversation_window(state_of(events), book, "t", DAY, events)
    assert window is not None
    data = render_eml(window, Keys())
    assert data == render_eml(window, Keys())
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    message = _strict(data)
    body = _body(message)
    for text in texts:
        for line in text.splitlines():
            assert line in body
    expected_names = [_one_line(n) or user for n, user in zip(names, ("u1", "u2"), strict=True)]
    # exact, except that Python's email reads a space between the encoded words of a long name
    read = [message["From"].addresses[0].display_name, message["To"].addresses[0].display_name]
    assert [r.replace(" ", "") for r in read] == [e.replace(" ", "") for e in expected_names]
    for got, expected in zip(read, expected_names, strict=True):
        assert got == expected or len(expected.encode()) > 45
    subject_name = _one_line(room_name) or window.conversation_id
    assert message["Subject"].startswith(f"room {subject_name}, ")
    parsed = mailparser.parse_from_bytes(data)
    assert parsed.defects == []
    assert parsed.from_[0][1] == "a@b.example"
