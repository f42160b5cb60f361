"""No silent change of content, no id shared across tenants or sources: long message text is kept whole
or dead-lettered as too_large (never cut); a dead letter always fits the record limit; publication ids
are scoped by tenant, source kind, source and message id."""

from __future__ import annotations

import hashlib

from app.catalog.model import default_catalog
from app.catalog.wire import EnvelopeCodec
from app.dead_letters import record_bytes
from app.normalize.mapping.pipeline import publication_id
from app.normalize.normalizer import Normalizer
from tests.unit.test_mapping_pipeline import (
    ACME,
    RING,
    SAMPLE,
    headers,
    inner,
    legacy_payload,
    open_text,
    records,
)

CATALOG = default_catalog()
CODEC = EnvelopeCodec({t.name: 100 + i for i, t in enumerate(CATALOG.canonical_topics())}, CATALOG)


def normalizer(limit: int) -> Normalizer:
    return Normalizer(CODEC, RING, "carryover.dlq.v1", max_record_bytes=limit)


def staging(text: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    payload = legacy_payload("MESSAGE_SENT", 2, "json", attrs={**SAMPLE, "markup": text})
    return payload, list(headers().items())


def test_message_text_over_200_000_characters_is_kept_whole() -> None:
    text = "word " * 60_000  # 300 000 characters
    payload, _ = staging(text)
    sent = inner(records(payload)[0])
    assert open_text(sent) == text.strip()


def test_a_canonical_record_over_the_limit_dead_letters_its_staging_record_as_too_large() -> None:
    payload, hdrs = staging("x" * 400_000)
    fits = normalizer(1_047_552).process(ACME.encode(), payload, hdrs, "staging/0/1")
    assert [o.dead_letter for o in fits] == [False]
    out = normalizer(200_000).process(ACME.encode(), payload, hdrs, "staging/0/1")
    assert len(out) == 1 and out[0].dead_letter
    named = dict(out[0].headers)
    assert named["dlq_reason"] == b"too_large" and b"nothing was cut" in named["dlq_error"]
    assert named["dlq_original_sha256"] == hashlib.sha256(payload).hexdigest().encode()  # cut, and says so
    assert record_bytes(out[0].value, out[0].headers) <= 200_000


def test_a_dead_letter_of_a_record_that_fits_keeps_its_original_bytes() -> None:
    out = normalizer(1_047_552).process(
        ACME.encode(), b"not a legacy event", list(headers().items()), "s/0/1"
    )
    assert len(out) == 1 and out[0].dead_letter and out[0].value == b"not a legacy event"
    assert "dlq_truncated" not in dict(out[0].headers)


def test_publication_ids_are_scoped_by_tenant_source_kind_source_and_message_id() -> None:
    base = headers(message_id="1")
    ids = {
        publication_id(base),
        publication_id({**base, "tenant": b"globex"}),
        publication_id({**base, "source": b"pubsub"}),
        publication_id({**base, "source_id": b"https://sqs/other"}),
        publication_id({**base, "sns_message_id": b"1", "sns_topic_arn": b"arn:a"}),
        publication_id({**base, "sns_message_id": b"1", "sns_topic_arn": b"arn:b"}),
    }
    assert len(ids) == 6
    # one SNS publication delivered twice (two SQS messages) is one publication
    assert publication_id({**base, "sns_message_id": b"s", "sns_topic_arn": b"arn:a"}) == publication_id(
        {**headers(message_id="2"), "sns_message_id": b"s", "sns_topic_arn": b"arn:a"}
    )
    assert publication_id(headers(message_id="")) == ""
    assert publication_id({**base, "tenant": b"\xff"}) == ""  # not text: no id, never an exception
