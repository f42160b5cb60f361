"""app.archive.render_jsonl: one JSON object per line (window start, one per event, window end), each naming
its tenant, unit, conversation and window; exact text; suppression marks and redaction; deterministic bytes
(examples + hypothesis)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.archive.render_jsonl import render_jsonl
from app.archive.window import conversation_window
from tests.unit.test_archive_builders import (
    DAY,
    HOUR,
    T0,
    Keys,
    desk_window,
    directory,
    directory_with_a_lone_surrogate,
    joined,
    sent,
    state_of,
)


def _lines(data: bytes) -> list[dict[str, Any]]:
    assert data.endswith(b"\n")
    return [json.loads(line) for line in data.decode("utf-8").split("\n")[:-1]]


def test_the_desk_lines() -> None:
    lines = _lines(render_jsonl(desk_window(), Keys()))
    assert [line["record"] for line in lines] == ["window_start"] + ["event"] * 10 + ["window_end"]
    for line in lines:
        assert (line["tenant"], line["business_unit"], line["conversation_id"]) == (
            "acme-bank",
            "trading",
            "q83vEjRWeJCrze8SNFZ4kA",
        )
        assert (line["window_start_ms"], line["window_end_ms"]) == (DAY.start_ms, DAY.end_ms)
    start, events, end = lines[0], lines[1:-1], lines[-1]
    assert start["conversation_name"] == "FX desk" and start["conversation_kind"] == "room"
    assert [p["user_id"] for p in start["participants"]] == ["u1", "u2"]
    assert start["participants"][1] == {
        "user_id": "u2",
        "display_name": "Bob Ünver",
        "email": "bob@acme.example",
        "role": "member",
        "business_unit": "trading",
    }
    assert [e["event_id"] for e in events] == [f"e{n}" for n in range(10, 20)]
    assert events[0] == {
        **{
            k: lines[0][k]
            for k in ("tenant", "business_unit", "conversation_id", "window_start_ms", "window_end_ms")
        },
        "record": "event",
        "event_id": "e10",
        "event_type": "message_sent",
        "time_ms": T0 + 9 * HOUR,
        "time": "2024-03-01T09:00:00.000Z",
        "user_id": "u1",
        "message_id": "m1",
        "text": "Morning @bob, EUR/USD 1.0842 #fx",
        "mentions": ["u2"],
        "hashtags": ["fx"],
    }
    by_id = {e["event_id"]: e for e in events}
    assert by_id["e11"]["text"] == "line one\nline two & <three>"
    assert by_id["e16"]["suppressed"] is True and by_id["e16"]["text"] == "inside info"
    assert by_id["e17"] == {
        **by_id["e17"],
        "event_type": "message_suppressed",
        "reason": "MNPI",
        "actor_user_id": "u9",
    }
    assert by_id["e18"]["role"] == "owner" and by_id["e18"]["old_role"] == "member"
    assert by_id["e14"]["actor_user_id"] == "u1"
    assert end["event_count"] == 10
    assert [p["role"] for p in end["participants"]] == ["owner", "owner"]


def test_redaction_only_by_policy() -> None:
    events = {
        e["event_id"]: e for e in _lines(render_jsonl(desk_window(), Keys(), redact_suppressed=True))[1:-1]
    }
    assert "text" not in events["e16"] and events["e16"]["redacted"] is True
    assert events["e10"]["text"].startswith("Morning")
    assert b"inside info" not in render_jsonl(desk_window(), Keys(), redact_suppressed=True)


def test_an_empty_message_keeps_its_empty_text() -> None:
    events = [joined("j", T0 - HOUR, "u1"), sent("s", T0 + 1, "u1", "")]
    window = conversation_window(state_of(events), directory({"u1": [(0, "t")]}), "t", DAY, events)
    assert window is not None
    assert _lines(render_jsonl(window, Keys()))[1]["text"] == ""


def test_a_lone_surrogate_in_a_name_is_escaped() -> None:
    events = [joined("j", T0 - HOUR, "u1"), sent("s", T0 + 1, "u1", "hi")]
    book = directory_with_a_lone_surrogate()
    window = conversation_window(state_of(events), book, "t", DAY, events)
    assert window is not None
    assert _lines(render_jsonl(window, Keys()))[0]["participants"][0]["display_name"] == "bad \ud800 name"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(st.text(max_size=60), min_size=1, max_size=5), seed=st.randoms())
def test_text_is_exact_and_bytes_deterministic_in_any_arrival_order(texts: list[str], seed: Any) -> None:
    events = [joined("j", T0 - HOUR, "u1")] + [sent(f"s{i}", T0 + i, "u1", t) for i, t in enumerate(texts)]
    book = directory({"u1": [(0, "t")]})
    window = conversation_window(state_of(events), book, "t", DAY, events)
    shuffled = events[:]
    seed.shuffle(shuffled)
    again = conversation_window(state_of(shuffled), book, "t", DAY, shuffled + shuffled[:2])
    assert window is not None and again is not None
    data = render_jsonl(window, Keys())
    assert data == render_jsonl(again, Keys())
    assert [line["text"] for line in _lines(data)[1:-1]] == texts
