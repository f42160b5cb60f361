"""Canonical topic names the mapping writes to (the same names as app/topics.py, without Faust)."""

from __future__ import annotations

CONVERSATIONS = "collaboration.conversations.v1"
MESSAGES = "collaboration.messages.v1"
USERS = "identity.users.v1"
COMPLIANCE = "compliance.actions.v1"
