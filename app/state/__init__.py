"""Per-conversation and per-user state in event time, the pure core the state agent keeps in its tables.

* :mod:`app.state.facts`: :class:`Fact` (what state needs from a canonical event), :func:`fact_from_event`,
  the table keys :func:`conversation_key` / :func:`user_key`.
* :mod:`app.state.conversation`: :class:`ConversationState` (membership intervals, lifecycle, kind, holds,
  counters; idempotent and order-insensitive; JSON round trip).
* :mod:`app.state.directory`: :class:`UserRecord` (profile, active, business-unit history) and the
  :class:`Directory` protocol conversation state looks users up in.

No Faust, Kafka or cloud imports: only the standard library and the generated canonical classes.
"""

from app.state.conversation import (
    COUNTER_NAMES,
    RECENT_WINDOW,
    ConversationState,
    Interval,
    derive_intervals,
)
from app.state.directory import DictDirectory, Directory, UserRecord
from app.state.facts import (
    Fact,
    FactKind,
    conversation_key,
    fact_from_event,
    role_name,
    split_key,
    user_key,
)

__all__ = [
    "COUNTER_NAMES",
    "RECENT_WINDOW",
    "ConversationState",
    "DictDirectory",
    "Directory",
    "Fact",
    "FactKind",
    "Interval",
    "UserRecord",
    "conversation_key",
    "derive_intervals",
    "fact_from_event",
    "role_name",
    "split_key",
    "user_key",
]
