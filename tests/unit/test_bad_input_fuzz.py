"""Bad input through ingest + normalize, in process: every publication ends as its canonical events or as
exactly one dead letter holding its original bytes, nothing it carried is lost, and no record is too big.

The corpus and the hypothesis strategy are in :mod:`tests.support.bad_input`.
"""

from __future__ import annotations

import collections
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.catalog.model import default_catalog
from app.catalog.wire import EnvelopeCodec
from app.crypto import aead
from app.ingest.landing import DeadLetter, Landing, LandingConfig, land_pubsub, land_sqs
from app.normalize.normalizer import Normalizer, Outgoing
from tests.support.bad_input import (
    CLASSES,
    DEFAULT_MAX_MESSAGE_BYTES,
    KEYRING,
    LANDING_PREFIX,
    FuzzPublication,
    by_class,
    corpus,
    publications,
)

CONFIG = LandingConfig(LANDING_PREFIX, max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES)
DEAD_LETTER_SLACK = 8192
RECEIVED_AT_MS = 1_767_225_700_000
DLQ_TOPIC = "carryover.dlq.v1"
CODEC = EnvelopeCodec({t.name: 100 + i for i, t in enumerate(default_catalog().canonical_topics())})
W3C_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
Headers = Sequence[tuple[str, bytes]]


@dataclass
class Outcome:
    """What became of one publication: canonical events, a dead letter, or neither (unaccounted)."""

    pub: FuzzPublication
    ended: str = "unaccounted"
    reason: str = ""
    problems: list[str] = field(default_factory=list)

    def fail(self, what: str) -> None:
        self.problems.append(f"{self.pub.describe()}: {what}")


def short(value: bytes | str, limit: int = 60) -> str:
    """A value for a message, cut with its length."""
    return repr(value[:limit]) + (f"... ({len(value)})" if len(value) > limit else "")


def values_of(headers: Headers, name: str) -> list[bytes]:
    return [value for header, value in headers if header == name]


FORENSIC_BYTES = 2048  # README: an invalid upstream traceparent is kept, cut to 2 048 bytes


def valid_traceparent(value: bytes) -> bool:
    """True for a W3C version-00 traceparent with non-zero trace and parent ids."""
    match = W3C_TRACEPARENT.fullmatch(value.decode("ascii", "replace"))
    return match is not None and set(match.group(1)) != {"0"} and set(match.group(2)) != {"0"}


def record_size(value: bytes, headers: Headers) -> int:
    return len(value) + sum(len(name.encode("utf-8", "surrogatepass")) + len(v) for name, v in headers)


def land(pub: FuzzPublication) -> Landing:
    if pub.sqs_message is not None:
        return land_sqs(
            pub.sqs_message, queue_url=pub.source_id, config=CONFIG, received_at_ms=RECEIVED_AT_MS
        )
    return land_pubsub(
        subscription_path=pub.source_id,
        message_id=pub.message_id,
        data=pub.data,
        attributes=pub.attributes,
        config=CONFIG,
        received_at_ms=RECEIVED_AT_MS,
    )


def check_headers(out: Outcome, where: str, key: object, headers: Headers) -> None:
    if key is not None and not isinstance(key, bytes):
        out.fail(f"{where} key is {type(key).__name__}, not bytes")
    for name, value in headers:
        if not isinstance(name, str):
            out.fail(f"{where} header name {name!r} is not a str")
            continue
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            out.fail(f"{where} header name {short(name)} is not valid UTF-8 text")
        if not isinstance(value, bytes):
            out.fail(f"{where} header {short(name)} value is {type(value).__name__}, not bytes")


def check_attributes(out: Outcome, where: str, headers: Headers, *, holds_body: bool = False) -> None:
    """Every attribute the publisher sent is under exactly one of its header names, with its value (or,
    for an SNS attribute, inside the whole SQS body a dead letter holds: ``holds_body``)."""
    for sent in out.pub.sent_attributes:
        if not sent.text or (sent.in_body and holds_body):
            continue
        if not any(values_of(headers, name) == [sent.value] for name in sent.header_names):
            found = {name: [short(v, 24) for v in values_of(headers, name)] for name in sent.header_names}
            out.fail(
                f"{where}: attribute {short(sent.name, 40)}={short(sent.value, 24)} lost or overwritten "
                f"(expected once under one of {list(sent.header_names)}; found {found})"
            )


def check_dead_letter(out: Outcome, where: str, value: bytes, headers: Headers) -> bool:
    """The reason, original bytes (or their hash when cut) and size of one dead letter; True when sound."""
    pub, sound = out.pub, True
    reasons = values_of(headers, "dlq_reason")
    out.reason = b",".join(reasons).decode("utf-8", "replace")
    if len(reasons) != 1 or not reasons[0]:
        out.fail(f"{where} dead letter has dlq_reason headers {reasons}, expected exactly one non-empty")
        sound = False
    hashes = values_of(headers, "dlq_original_sha256")
    digest = hashes[0].decode("ascii", "replace") if len(hashes) == 1 else None

    def accounts_for(original: bytes) -> bool:
        hashed = digest == hashlib.sha256(original).hexdigest()
        kept = value == original or (hashed and original.startswith(value))
        return kept and (len(original) <= CONFIG.max_message_bytes or hashed)

    body = pub.sqs_message["Body"] if pub.sqs_message is not None else None
    holds_body = body is not None and accounts_for(body.encode("utf-8", "surrogatepass"))

    if not any(accounts_for(o) for o in (pub.original, *pub.alternative_originals)):
        over = len(pub.original) > CONFIG.max_message_bytes
        out.fail(
            f"{where} dead letter value is {short(value)}, not the original {short(pub.original)}"
            + (
                f"; the original is over the limit, so dlq_original_sha256 must be its sha256 (got {hashes})"
                if over
                else ""
            )
        )
        sound = False
    if pub.dead_letter_reasons and out.reason not in pub.dead_letter_reasons:
        out.fail(
            f"{where} dead letter reason {out.reason!r}, expected one of {list(pub.dead_letter_reasons)}"
        )
    size = record_size(value, headers)
    if size > CONFIG.max_message_bytes + DEAD_LETTER_SLACK:
        out.fail(f"{where} dead letter is {size} bytes, over max_message_bytes + {DEAD_LETTER_SLACK}")
    check_attributes(out, f"{where} dead letter", headers, holds_body=holds_body)
    return sound


def message_text(record: Outgoing, tenant: str) -> str:
    """The decrypted text of a MessageSent record, as a consumer with the tenant keys reads it."""
    envelope = CODEC.decode(record.topic, record.value)
    event = getattr(envelope, str(envelope.WhichOneof("event")))
    key = KEYRING.decryption_key(tenant, event.text.key_id)
    return aead.decrypt(key, event.text.ciphertext, tenant_id=tenant, key_id=event.text.key_id).decode()


def check_canonical(out: Outcome, records: list[Outgoing]) -> None:
    pub = out.pub
    ce_types = [b"".join(values_of(r.headers, "ce_type")).decode() for r in records]
    if pub.valid and tuple(ce_types) != pub.expected_ce_types:
        out.fail(f"canonical events {ce_types}, expected {list(pub.expected_ce_types)}")
    if pub.expect_dead_letter:
        out.fail(f"bad input became {len(records)} canonical event(s) {ce_types} instead of a dead letter")
    upstream = pub.upstream_traceparent or b""  # an empty one counts as none sent
    for record in records:
        tenants = values_of(record.headers, "ce_tenantid")
        if record.key != pub.tenant.encode() or tenants != [pub.tenant.encode()]:
            out.fail(f"canonical record of tenant {record.key!r} / {tenants}, published to {pub.tenant}")
        traces = values_of(record.headers, "traceparent")
        if len(traces) != 1 or not valid_traceparent(traces[0]):
            out.fail(f"canonical record traceparent {[short(t) for t in traces]} is not one valid W3C value")
        kept = values_of(record.headers, "traceparent_invalid")
        forensic = upstream[:FORENSIC_BYTES] if upstream else upstream  # kept up to a bound
        if upstream and not valid_traceparent(upstream) and kept != [forensic]:
            out.fail(
                f"upstream traceparent {short(upstream)} is invalid but the record's traceparent_invalid "
                f"is {[short(v) for v in kept]}"
            )
    if pub.full_text is not None:
        for record in records:
            if record.topic == "collaboration.messages.v1":
                text = message_text(record, pub.tenant)
                if text != pub.full_text:
                    out.fail(f"message text cut: {len(text)} of {len(pub.full_text)} chars reached the topic")


def follow(pub: FuzzPublication, normalizer: Normalizer, offset: int) -> Outcome:
    """Lands ``pub``, normalizes what lands, and checks every invariant on the way."""
    out = Outcome(pub)
    try:
        landing = land(pub)
    except Exception as exc:  # noqa: BLE001 - the finding to report
        out.fail(f"landing raised {type(exc).__name__}: {short(str(exc), 120)}")
        return out
    check_headers(out, "landing", landing.key, landing.headers)
    if isinstance(landing, DeadLetter):
        if check_dead_letter(out, "ingest", landing.value, landing.headers):
            out.ended = "dead_letter"
    else:
        size = record_size(landing.value, landing.headers)
        if size > CONFIG.max_message_bytes:
            out.fail(f"staging record is {size} bytes, over max_message_bytes {CONFIG.max_message_bytes}")
        check_attributes(out, "staging record", landing.headers)
        try:
            records = normalizer.process(landing.key, landing.value, landing.headers, f"staging/0/{offset}")
        except Exception as exc:  # noqa: BLE001 - the finding to report
            out.fail(f"normalize raised {type(exc).__name__}: {short(str(exc), 120)}")
            return out
        for record in records:
            check_headers(out, f"normalize ({record.topic})", record.key, record.headers)
        letters = [r for r in records if r.dead_letter]
        canonical = [r for r in records if not r.dead_letter]
        if (letters and canonical) or len(letters) > 1 or not records:
            out.fail(f"normalize gave {len(canonical)} canonical record(s) and {len(letters)} dead letter(s)")
        elif letters:
            if letters[0].topic != DLQ_TOPIC:
                out.fail(f"dead letter sent to {letters[0].topic}")
            if check_dead_letter(out, "normalize", letters[0].value, letters[0].headers):
                out.ended = "dead_letter"
        else:
            out.ended = "canonical"
            check_canonical(out, canonical)
    if pub.valid and out.ended == "dead_letter":
        out.fail(f"valid publication dead-lettered ({out.reason})")
    return out


def run(pubs: Sequence[FuzzPublication]) -> list[Outcome]:
    """``pubs`` in order through one normalizer (valid ones interleaved with bad ones)."""
    normalizer = Normalizer(CODEC, KEYRING, DLQ_TOPIC)
    return [follow(pub, normalizer, offset) for offset, pub in enumerate(pubs)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(publications(), min_size=1, max_size=5))
def test_any_mix_of_bad_and_valid_input_is_accounted_for(pubs: list[FuzzPublication]) -> None:
    problems = [problem for outcome in run(pubs) for problem in outcome.problems]
    assert not problems, "\n".join(problems)


def table(outcomes: Sequence[Outcome]) -> str:
    """Per class: publications, canonical, dead-lettered, unaccounted, with invariant violations, reasons."""
    lines = [f"{'class':<20} {'pubs':>5} {'canonical':>9} {'dead':>5} {'unacc':>5} {'viol':>5}  reasons"]
    for cls, _ in by_class([o.pub for o in outcomes]):
        mine = [o for o in outcomes if o.pub.cls == cls]
        ended = collections.Counter(o.ended for o in mine)
        reasons = collections.Counter(o.reason for o in mine if o.ended == "dead_letter")
        lines.append(
            f"{cls:<20} {len(mine):>5} {ended['canonical']:>9} {ended['dead_letter']:>5} "
            f"{ended['unaccounted']:>5} {sum(1 for o in mine if o.problems):>5}  "
            + ", ".join(f"{reason}={n}" for reason, n in sorted(reasons.items()))
        )
    return "\n".join(lines)


def test_labeled_corpus_is_accounted_for_class_by_class() -> None:
    pubs = corpus(seed=20260101, per_class=24)
    outcomes = run(pubs)
    report = table(outcomes)
    print("\n" + report)
    assert {p.cls for p in pubs} == set(CLASSES)
    failing = {cls for cls in CLASSES if any(o.problems for o in outcomes if o.pub.cls == cls)}
    examples = [
        problem
        for cls in sorted(failing)
        for problem in [o for o in outcomes if o.pub.cls == cls and o.problems][0].problems
    ]
    unaccounted = {
        cls for cls in CLASSES if any(o.ended == "unaccounted" for o in outcomes if o.pub.cls == cls)
    }
    assert not unaccounted and not failing, (
        f"unaccounted in {sorted(unaccounted)}; invariants broken in {sorted(failing)}\n{report}\n"
        + "\n".join(examples)
    )


def test_corpus_is_deterministic_and_every_class_is_labeled() -> None:
    first, again = corpus(seed=3, per_class=3), corpus(seed=3, per_class=3)
    assert [(p.cls, p.variant, p.original, p.sqs_message, p.data) for p in first] == [
        (p.cls, p.variant, p.original, p.sqs_message, p.data) for p in again
    ]
    assert {p.cls for p in first} == set(CLASSES)
    for pub in first:
        assert (pub.sqs_message is None) == (pub.cloud == "pubsub"), pub
        assert not pub.valid or pub.expected_events >= 1, pub
