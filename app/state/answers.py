"""What the read path answers about one conversation, as JSON-ready data (pure).

``GET /state/conversations/{tenant}/{id}`` and ``carryover state conversation TENANT ID`` show
:func:`conversation_answer`: the conversation's kind, name, lifecycle, members with their intervals and role
changes, the business units present over time, legal holds, counters and last event time. Times are event
times in milliseconds since the epoch (``null`` = unknown / open).
"""

from __future__ import annotations

from typing import Any

from app.state.conversation import ConversationState, Interval
from app.state.directory import Directory


def business_unit_timeline(state: ConversationState, directory: Directory) -> list[dict[str, Any]]:
    """``[{"from_ms": t, "units": [...]}, ...]``: the business units present from each change on.

    A change is any moment a member joined or left, or a member's business unit changed while a member;
    consecutive moments with the same set are merged. The first entry starts at the earliest such moment
    (``null`` when a member was there "since before anything we know").
    """
    moments: set[int] = set()
    open_start = False
    for user_id, intervals in state.membership_intervals().items():
        record = directory.user(state.tenant, user_id)
        for interval in intervals:
            if interval.joined_ms is None:
                open_start = True
            else:
                moments.add(interval.joined_ms)
            if interval.left_ms is not None:
                moments.add(interval.left_ms)
            if record is not None:
                moments.update(t for t, _ in record.business_unit_history() if interval.contains(t))
    timeline: list[dict[str, Any]] = []
    ordered = sorted(moments)
    if open_start:
        first = (ordered[0] - 1) if ordered else 0
        timeline.append({"from_ms": None, "units": sorted(state.business_units_at(first, directory))})
    for t in ordered:
        units = sorted(state.business_units_at(t, directory))
        if not timeline or timeline[-1]["units"] != units:
            timeline.append({"from_ms": t, "units": units})
    return timeline


def _interval(interval: Interval) -> dict[str, Any]:
    return {
        "joined_ms": interval.joined_ms,
        "left_ms": interval.left_ms,
        "role": interval.role,
        "role_changes": [{"at_ms": t, "role": role} for t, role in interval.role_changes],
    }


def conversation_answer(state: ConversationState, directory: Directory) -> dict[str, Any]:
    """The read path's answer for ``state`` (its business units looked up in ``directory``)."""
    current = state.members()
    members: dict[str, Any] = {}
    for user_id, intervals in state.membership_intervals().items():
        record = directory.user(state.tenant, user_id)
        members[user_id] = {
            "member_now": user_id in current,
            "role_now": current.get(user_id),
            "business_unit_now": record.business_unit if record is not None else None,
            "intervals": [_interval(i) for i in intervals],
        }
    return {
        "tenant": state.tenant,
        "conversation_id": state.conversation_id,
        "kind": state.kind,
        "name": state.name,
        "active": state.active,
        "created_ms": state.created_ms,
        "deactivated_ms": state.deactivated_ms,
        "creator_user_id": state.creator_user_id or None,
        "external": state.external,
        "public": state.public,
        "lifecycle": [{"at_ms": t, "event": event} for t, event in state.lifecycle()],
        "members": members,
        "business_units": business_unit_timeline(state, directory),
        "legal_holds": sorted(state.legal_holds),
        "counters": state.counters,
        "facts": state.fact_counts(),
        "last_event_ms": state.last_event_ms,
    }
