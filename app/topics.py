"""Every Kafka topic name carryover reads or writes, declared once (pure: no Faust, no settings).

Names are the catalog's (``catalog/topics.yaml``); ``tests/unit/test_topics.py`` fails when a canonical
topic name is typed out anywhere else in the code. The Faust topic objects are made from these names by
:class:`app.faust_app.StreamTopics`, with the environment's prefix.
"""

from __future__ import annotations

STAGING = "legacy.staging.v1"
CONVERSATIONS = "collaboration.conversations.v1"
MESSAGES = "collaboration.messages.v1"
USERS = "identity.users.v1"
COMPLIANCE = "compliance.actions.v1"
WEBHOOK_DELIVERIES = "webhooks.deliveries.v1"
"""Verified webhook deliveries, keyed by (tenant, conversation): the fan-in agent's input."""
WEBHOOK_CONFIG = "carryover.config.webhooks"
"""Hook definitions (secrets sealed with the tenant key), keyed by hook id; compacted."""
CONVERSATION_EVENTS = "carryover.state.conversation-events.v1"
"""Canonical events of conversations, keyed by (tenant, conversation): the state stage's input."""
ARCHIVE_POLICIES = "carryover.config.archive"
"""Archive policies per (tenant, business unit), compacted; key :func:`app.archive.policy.policy_id`."""
DEAD_LETTERS = "carryover.dlq.v1"
WORKER_STATUS = "carryover.ops.worker-status"
"""Each ingesting worker's status (its source counters), summed by the lag page of every worker."""
CANONICAL = (CONVERSATIONS, MESSAGES, USERS, COMPLIANCE)
"""The canonical topics, one per bounded context's stream, in the catalog's order."""
CONVERSATION_SOURCES = (CONVERSATIONS, MESSAGES, COMPLIANCE)
"""Canonical topics whose events belong to a conversation (repartitioned into CONVERSATION_EVENTS)."""
