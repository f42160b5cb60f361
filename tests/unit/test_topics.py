"""app.topics declares exactly the catalog's topics, with the catalog's partitions."""

from __future__ import annotations

from app import topics


def test_declared_topics_come_from_the_catalog() -> None:
    declared = [topics.STAGING, topics.DEAD_LETTERS, *topics.CANONICAL, topics.WEBHOOK_DELIVERIES]
    assert set(declared) <= set(topics.CATALOG.topics)
    assert set(topics.CANONICAL) == {t.name for t in topics.CATALOG.canonical_topics()}
    assert topics.staging.partitions == topics.CATALOG.topics[topics.STAGING].partitions
    assert all(t.value_serializer == "raw" for t in topics.canonical.values())
