"""Topic names are declared once (app/topics.py), exactly the catalog's, and typed out nowhere else."""

from __future__ import annotations

import re
from pathlib import Path

from app import topics
from app.catalog.model import default_catalog
from app.faust_app import CarryoverApp
from app.settings import load

REPO = Path(__file__).resolve().parents[2]
CATALOG = default_catalog()


def test_declared_topics_come_from_the_catalog() -> None:
    declared = [topics.STAGING, topics.DEAD_LETTERS, *topics.CANONICAL, topics.WEBHOOK_DELIVERIES]
    assert set(declared) <= set(CATALOG.topics)
    assert set(topics.CANONICAL) == {t.name for t in CATALOG.canonical_topics()}


def test_the_apps_stream_topics_have_the_catalogs_partitions_and_the_prefix() -> None:
    app = CarryoverApp(load({"CARRYOVER_TOPIC_PREFIX": "env1."}))
    streams = app.streams
    assert streams.staging.get_topic_name() == "env1." + topics.STAGING
    assert streams.staging.partitions == CATALOG.topics[topics.STAGING].partitions
    assert all(t.value_serializer == "raw" for t in streams.canonical.values())


def test_no_topic_name_is_typed_out_outside_app_topics() -> None:
    names = [topics.STAGING, topics.DEAD_LETTERS, *topics.CANONICAL, topics.WEBHOOK_DELIVERIES]
    # a name as (the end of) a string literal: "name", 'name', f"{prefix}.name"
    pattern = re.compile("|".join(rf"""(?<=["'.}}]){re.escape(name)}(?=["'])""" for name in names))
    offenders = []
    for folder in ("app", "agents", "bench"):
        for path in (REPO / folder).rglob("*.py"):
            if path == REPO / "app" / "topics.py" or "canonical" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line):
                    offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offenders, "use app.topics instead of typing topic names:\n" + "\n".join(offenders)
