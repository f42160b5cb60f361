"""Every Kafka topic carryover reads or writes, declared once, with names and partitions from the catalog.

Values are raw bytes on every topic: staging carries the payload exactly as received, canonical topics
carry Confluent-framed protobuf produced by the catalog's codec, the dead-letter topic the original bytes.
"""

from __future__ import annotations

from faust.types import TopicT

from app import app, settings
from app.catalog.model import default_catalog

STAGING = "legacy.staging.v1"
CONVERSATIONS = "collaboration.conversations.v1"
MESSAGES = "collaboration.messages.v1"
USERS = "identity.users.v1"
COMPLIANCE = "compliance.actions.v1"
WEBHOOK_DELIVERIES = "webhooks.deliveries.v1"
DEAD_LETTERS = "carryover.dlq.v1"
CANONICAL = (CONVERSATIONS, MESSAGES, USERS, COMPLIANCE)

CATALOG = default_catalog()


def raw_topic(name: str) -> TopicT:
    """The catalog's topic ``name`` (prefixed by CARRYOVER_TOPIC_PREFIX), keys and values passed as bytes."""
    spec = CATALOG.topics[name]
    return app.topic(
        settings.topic_prefix + name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=spec.partitions,
        replicas=settings.topic_replicas,
    )


staging = raw_topic(STAGING)
dead_letters = raw_topic(DEAD_LETTERS)
canonical = {name: raw_topic(name) for name in CANONICAL}
