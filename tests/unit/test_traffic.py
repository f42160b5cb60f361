"""The legacy traffic simulator: deterministic, realistic mix, bad payloads, and a ground truth that the
normalize pipeline agrees with publication by publication."""

from __future__ import annotations

import base64
import collections
import io
import json
from pathlib import Path
from typing import Any

import pytest

from app.crypto.keyring import Keyring, key_set
from app.dev.simulate.traffic import BAD_KINDS, TrafficConfig, TrafficGenerator, generate, write_ground_truth
from app.normalize.mapping.pipeline import Rejected, normalize
from models.legacy import spec
from tests.support.ground_truth import event_fields

TENANTS = ["acme-bank", "globex-capital", "initech-securities"]
RING = Keyring.static(
    key_set(
        {
            t: (f"{t}/v2", [(f"{t}/v1", bytes([i + 1]) * 32), (f"{t}/v2", bytes([i + 101]) * 32)])
            for i, t in enumerate(TENANTS)
        }
    )
)


@pytest.fixture(scope="module")
def traffic() -> list[Any]:
    """2500 publications with 8 % bad ones."""
    return generate(
        TrafficConfig(TENANTS, conversations_per_tenant=4, bad_fraction=0.08, seed=42), RING, 2500
    )


def test_same_seed_same_bytes_other_seed_other_traffic(traffic: list[Any]) -> None:
    again = generate(
        TrafficConfig(TENANTS, conversations_per_tenant=4, bad_fraction=0.08, seed=42), RING, 2500
    )
    assert [p.ground_truth() for p in again] == [p.ground_truth() for p in traffic]
    other = generate(TrafficConfig(TENANTS, conversations_per_tenant=4, bad_fraction=0.08, seed=43), RING, 50)
    assert [p.body for p in other] != [p.body for p in traffic[:50]]


def test_mix_covers_every_type_version_encoding_tenant_and_cloud(traffic: list[Any]) -> None:
    good = [p for p in traffic if p.dead_letter_reason is None]
    assert {(p.legacy_type, p.legacy_version) for p in good} == set(spec.SPECS)
    assert {p.encoding for p in good} == {"json", "protobuf", "encrypted"}
    assert {p.tenant_id for p in traffic} == set(TENANTS)
    assert {p.cloud for p in traffic} == {"aws", "gcp"}
    assert {p.tenant_id: p.cloud for p in traffic} == {
        "acme-bank": "aws",
        "globex-capital": "gcp",
        "initech-securities": "aws",
    }
    by_type = collections.Counter(p.legacy_type for p in good)
    assert by_type.most_common(1)[0][0] == "MESSAGE_SENT"  # chat traffic is mostly messages
    assert len({p.publication_id for p in traffic}) == len(traffic)
    for p in traffic:
        assert p.attributes["eventType"] == p.legacy_type and p.attributes["tenantId"] == p.tenant_id
        assert p.attributes["publicationId"] == p.publication_id
        assert bool(p.expected) != bool(p.dead_letter_reason)


def test_bad_fraction_and_kinds(traffic: list[Any]) -> None:
    bad = [p for p in traffic if p.dead_letter_reason]
    assert 0.05 < len(bad) / len(traffic) < 0.11
    assert {p.bad_kind for p in bad} == set(BAD_KINDS)
    clean = generate(TrafficConfig(TENANTS, bad_fraction=0.0, seed=1), RING, 500)
    assert not [p for p in clean if p.dead_letter_reason]


def test_ground_truth_matches_what_normalize_produces(traffic: list[Any]) -> None:
    checked = collections.Counter[str]()
    for publication in traffic:
        outcome = normalize(
            publication.body, {"tenant": publication.tenant_id.encode(), "source": b"sim"}, RING
        )
        if publication.dead_letter_reason:
            assert isinstance(outcome, Rejected), publication.publication_id
            assert outcome.reason == publication.dead_letter_reason, (publication.bad_kind, outcome)
            checked["dead letters"] += 1
            continue
        assert not isinstance(outcome, Rejected), (publication.publication_id, outcome)
        got = [(r.topic, r.ce_type, r.tenant_id) for r in outcome]
        assert got == [(e.topic, e.ce_type, e.tenant_id) for e in publication.expected]
        for record, expected in zip(outcome, publication.expected, strict=True):
            event = getattr(record.envelope, str(record.envelope.WhichOneof("event")))
            actual = event_fields(event, expected.fields, record.tenant_id, RING)
            expected_fields = tuple(sorted(expected.fields.items()))
            assert actual == expected_fields, (publication.publication_id, record.ce_type)
            checked[record.ce_type] += 1
    assert checked["dead letters"] > 100 and len(checked) == 18  # 17 canonical event types + dead letters


def test_ground_truth_jsonl(traffic: list[Any], tmp_path: Path) -> None:
    path = tmp_path / "out" / "ground-truth.jsonl"
    assert write_ground_truth(path, traffic[:200]) == 200
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 200
    assert base64.b64decode(rows[0]["body_b64"]) == traffic[0].body
    assert {"publication_id", "tenant_id", "cloud", "attributes", "expected", "dead_letter_reason"} <= set(
        rows[0]
    )
    buffer = io.StringIO()
    write_ground_truth(buffer, traffic[:3])
    assert buffer.getvalue().count("\n") == 3


def test_streaming_iterator_continues_the_same_sequence() -> None:
    config = TrafficConfig(TENANTS, seed=5)
    stream = iter(TrafficGenerator(config, RING))
    first = [next(stream) for _ in range(30)]
    assert [p.body for p in first] == [p.body for p in generate(config, RING, 30)]


def test_every_tenant_needs_keys() -> None:
    with pytest.raises(ValueError, match="no keys for tenant 'umbrella'"):
        TrafficGenerator(TrafficConfig(["umbrella"]), RING)
