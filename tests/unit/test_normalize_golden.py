"""Golden output of the pure normalize transform: a seeded simulator run of a few thousand staging records
(every legacy type, version and encoding, ~6 % bad payloads, SNS and Pub/Sub provenance, upstream trace
contexts valid and invalid, records without a message id or a tenant header, hand-written markup edge cases
and ``too_large`` records) through :meth:`Normalizer.process`, pinned as one SHA-256 over every output
(topic, key, value, headers, dead-letter flag, in order).

Any change of a single output byte changes the digest: a speed-up of the transform must leave it as it is.
Change :data:`GOLDEN_SHA256` only for a deliberate change of the outputs, and say so in the commit. Nothing
here reads the wall clock: event times come from the simulator's seeded clock, ``received_at`` is derived
from the record's position.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from app.catalog.model import default_catalog
from app.catalog.wire import EnvelopeCodec
from app.crypto import aead
from app.crypto.keyring import Keyring, key_set
from app.dev.simulate.traffic import TrafficConfig, generate
from app.ingest.landing import legacy_headers, provenance_headers
from app.normalize.cloudevents import rfc3339_ms
from app.normalize.mapping.context import EventContext
from app.normalize.mapping.pipeline import EVENT_ID_NAMESPACE, uuid5_text
from app.normalize.normalizer import Normalizer, Outgoing
from app.topics import COMPLIANCE, CONVERSATIONS, MESSAGES, USERS
from models.canonical.carryover.common.v1.encrypted_text_pb2 import EncryptedText
from models.canonical.carryover.common.v1.provenance_pb2 import Provenance
from models.legacy import codec

TENANTS = ["acme-bank", "globex-capital", "initech-securities"]
RING = Keyring.static(
    key_set(
        {
            t: (f"{t}/v2", [(f"{t}/v1", bytes([i + 1]) * 32), (f"{t}/v2", bytes([i + 101]) * 32)])
            for i, t in enumerate(TENANTS)
        }
    )
)
CATALOG = default_catalog()
SCHEMA_IDS = {CONVERSATIONS: 100, MESSAGES: 101, USERS: 102, COMPLIANCE: 103}
CODEC = EnvelopeCodec(SCHEMA_IDS, CATALOG)
DLQ = "carryover.dlq.v1"
SIMULATED = 3000
RECEIVED_AT_MS = 1_767_225_600_000
VALID_TRACEPARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
INVALID_TRACEPARENT = b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"
ROOM = "AQIDBAUGBwgJCgsMDQ4PEBES"
MARKUPS = [
    "plain text, no markup at all",
    "  <messageML>  spaced   out  </messageML>  ",
    '<messageML>Hi <mention uid="123"/> see <a href="https://x">this</a> #deal</messageML>',
    '<messageML>Ping <mention uid="7" name="Jane Doe"/> <hash tag="fx"/> and #fx again</messageML>',
    "<messageML><p>Line <b>one</b> &amp; more</p><p>two<br/>three</p></messageML>",
    '<messageML>read https://example.com/a?b=1. Then <cash tag="AAPL"/></messageML>',
    '<messageML><a href="https://y"/></messageML>',
    '<messageML><mention uid="abc"/> <mention email="a@b.c"/></messageML>',
    "<messageML>&lt;script&gt; &#169; &#x263A; &eacute; &notanentity; &amp</messageML>",
    "<messageML><div><ul><li>one</li><li>two</li></ul></div><table><tr>cell</tr></table></messageML>",
    "<messageML>unclosed <b>bold <i>italic</messageML>",
    "<messageML>a < b and c > d &</messageML>",
    "<messageML><!-- a comment --> kept <![CDATA[raw]]> text</messageML>",
    "<messageML><a>no href</a> <a href=''>empty</a> <A HREF=\"https://UP\">Upper</A></messageML>",
    "<messageML><hash tag='#double'/> <cash tag='$$x'/> <hash/> <cash tag=''/></messageML>",
    '<messageML><mention uid=" 42 " name=" Spaced "/> <mention uid="0"/> <mention/></messageML>',
    "<messageML>#tag1 #tag1 &#35;notatag a#b #_x #-y #über</messageML>",
    "<messageML>see http://a.example/x), https://b.example/y. and https://b.example/y</messageML>",
    '<messageML><a href="https://l">https://l</a> https://l</messageML>',
    "<messageML><p></p><p>\n\n  spaced \t\n\n\n lines  </p><br><br/><div/></messageML>",
    "<messageML><card><h1>Title</h1><pre>code  block</pre></card></messageML>",
    "<messageML><span class=\"x\" data-y='1' z=w>attrs</span><img src=x /></messageML>",
    '<messageML><b>nested <a href="https://n">link <i>in</i> tag</a></b></messageML>',
    '<messageML><a href="https://a">outer <a href="https://b">inner</a></a></messageML>',
    "<messageML>emoji 😀 and \u00a0nbsp and \u200b zero width</messageML>",
    "<messageML><script>if (a < b) { x(); }</script> after</messageML>",
    "<messageML><style>p { color: red }</style>styled</messageML>",
    "<messageML></messageML>",
    "<",
    "</",
    "<messageML",
    "<messageML>trailing &",
    "&#0; &#xD800; &#1114112; &#65;",
    '<?xml version="1.0"?><messageML>decl</messageML>',
    "<!DOCTYPE html><messageML>doctype</messageML>",
    "<messageML>" + "word " * 400 + "</messageML>",
    "<messageML>" + "x" * 3000 + "</messageML>",
]
"""Markup edge cases beyond the simulator's chat messages (the last two exceed the small record limit)."""
SMALL_LIMIT = 3000
"""Record limit of a second normalizer, so that large messages become ``too_large`` dead letters."""

GOLDEN_SHA256 = "3e99cad38a59ba8f85cb25c8c6474607336dc11ef3b9e352424829c8ad6e385a"
"""Changed on purpose once: dead letters gained ``dlq_id`` (issue 9, part 5). Before that it was
eb8ac5f404831d61adbaa87ab624b4e1846d3bf18b9077fc9cb30e824a6759ef, which the run still gives with the
``dlq_id`` headers left out (and which the speed-ups of part 2 kept)."""
GOLDEN_COUNTS = (3089, 195)
"""(canonical records, dead letters) of the run: a quicker hint than the digest of what changed."""

Staged = tuple[bytes | None, bytes, list[tuple[str, bytes]], str]


def simulated_records() -> list[Staged]:
    """The simulator's publications as ingestion lands them, with provenance variations by position."""
    config = TrafficConfig(TENANTS, conversations_per_tenant=4, bad_fraction=0.06, seed=2027)
    out: list[Staged] = []
    for i, publication in enumerate(generate(config, RING, SIMULATED)):
        tenant: str | None = None if i % 19 == 0 else publication.tenant_id
        message_id = "" if i % 23 == 0 else publication.publication_id
        headers = provenance_headers(
            source="sqs" if publication.cloud == "aws" else "pubsub",
            source_id=f"golden-{publication.tenant_id}",
            source_message_id=message_id,
            received_at_ms=RECEIVED_AT_MS + 1000 * i,
            tenant=tenant,
        )
        if i % 7 == 0:
            headers += [
                ("sns_message_id", f"sns-{i:06d}".encode()),
                ("sns_topic_arn", f"arn:aws:sns:eu-west-1:1:{publication.tenant_id}".encode()),
            ]
        headers += legacy_headers([(k, v.encode()) for k, v in publication.attributes.items()])
        if i % 13 == 0:
            headers.append(("traceparent", VALID_TRACEPARENT))
        elif i % 17 == 0:
            headers.append(("traceparent", INVALID_TRACEPARENT))
        key = None if tenant is None and i % 2 else (tenant or message_id).encode()
        out.append((key, publication.body, headers, f"legacy.staging.v1/{i % 6}/{i}"))
    return out


def markup_records() -> list[Staged]:
    """One MESSAGE_SENT per markup edge case, in JSON, base64 protobuf and the encrypted wrapper; every
    fifth also without any tenant (a ``missing_tenant`` dead letter)."""
    out: list[Staged] = []
    for i, markup in enumerate(MARKUPS):
        attrs = {
            "conversation_id": ROOM,
            "message_id": f"markup-{i:03d}",
            "sender_user_id": "1001",
            "markup": markup,
        }
        tenant = TENANTS[i % len(TENANTS)]
        occurred = RECEIVED_AT_MS + 7 * i
        bodies = [
            codec.encode_json("MESSAGE_SENT", 2, attrs, tenant_id=tenant, occurred_ms=occurred),
            codec.encode_protobuf("MESSAGE_SENT", 2, attrs, tenant_id=tenant, occurred_ms=occurred),
        ]
        key_id = f"{tenant}/v1"
        inner = codec.encode_json("MESSAGE_SENT", 1, attrs, tenant_id=None, occurred_ms=occurred)
        nonce = hashlib.sha256(inner).digest()[:12]
        blob = aead.encrypt(
            RING.decryption_key(tenant, key_id), inner, tenant_id=tenant, key_id=key_id, nonce=nonce
        )
        bodies.append(codec.encode_encrypted(tenant, key_id, blob))
        if i % 5 == 0:
            bodies.append(codec.encode_json("MESSAGE_SENT", 2, attrs, tenant_id=None, occurred_ms=occurred))
        for j, body in enumerate(bodies):
            headers = provenance_headers(
                source="pubsub",
                source_id=f"golden-markup-{tenant}",
                source_message_id=f"markup-{i:03d}-{j}",
                received_at_ms=occurred + 5,
                tenant=None if j == 3 else tenant,
            )
            out.append((tenant.encode(), body, headers, f"legacy.staging.v1/0/{100_000 + 4 * i + j}"))
    return out


def digest(outputs: Iterable[Outgoing]) -> tuple[str, int, int]:
    """SHA-256 over every output, length-prefixed field by field, and the canonical / dead-letter counts."""
    sha = hashlib.sha256()
    canonical = dead = 0

    def put(data: bytes) -> None:
        sha.update(len(data).to_bytes(8, "big"))
        sha.update(data)

    for output in outputs:
        put(b"D" if output.dead_letter else b"C")
        put(output.topic.encode())
        put(b"\xff" if output.key is None else b"K" + output.key)
        put(output.value)
        put(len(output.headers).to_bytes(4, "big"))
        for name, value in output.headers:
            put(name.encode())
            put(value)
        if output.dead_letter:
            dead += 1
        else:
            canonical += 1
    return sha.hexdigest(), canonical, dead


def run() -> list[Outgoing]:
    """Every golden staging record through a default normalizer, the markup ones also through a small one."""
    default = Normalizer(CODEC, RING, DLQ)
    small = Normalizer(CODEC, RING, DLQ, max_record_bytes=SMALL_LIMIT)
    outputs: list[Outgoing] = []
    for key, value, headers, origin in simulated_records() + markup_records():
        outputs += default.process(key, value, headers, origin)
    for key, value, headers, origin in markup_records():
        outputs += small.process(key, value, headers, origin)
    return outputs


@pytest.fixture(scope="module")
def outputs() -> list[Outgoing]:
    return run()


def test_the_run_covers_dead_letters_and_every_kind_of_output(outputs: list[Outgoing]) -> None:
    reasons = {dict(o.headers)["dlq_reason"] for o in outputs if o.dead_letter}
    assert {b"malformed", b"unknown_type", b"unsupported_version", b"decrypt_failed"} <= reasons
    assert {b"unknown_key_id", b"missing_tenant", b"too_large"} <= reasons
    names = {name for o in outputs if not o.dead_letter for name, _ in o.headers}
    assert {"ce_encryptionkeyid", "traceparent", "traceparent_invalid"} <= names
    assert {o.topic for o in outputs if not o.dead_letter} == set(SCHEMA_IDS)


def test_every_output_byte_is_as_pinned(outputs: list[Outgoing]) -> None:
    sha, canonical, dead = digest(outputs)
    assert (canonical, dead) == GOLDEN_COUNTS
    assert sha == GOLDEN_SHA256


# ---- the fast paths behind the digest read every input as what they replace did ----

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
ODD_JSON = [
    b'{"a":NaN}',
    b'{"a":-Infinity}',
    b'{"a":1e400}',
    b'{"a":123456789012345678901234567890}',
    b'{"a":-9223372036854775809}',
    b'{"a":18446744073709551616}',
    b'{"a":"\\ud800"}',
    b'{"a":"\xed\xa0\x80"}',
    b'{"a":"\xff"}',
    b'\xef\xbb\xbf{"a":1}',
    b'{"a":1,"a":2}',
    b'{"a":1,}',
    b'{"a":01}',
    b'{"a":1}\x0c',
    b'{"a":"\x01"}',
    b"{" + b'"a":[' * 990 + b"]" * 990 + b"}",
    b"{" + b'"a":[' * 30 + b"]" * 30 + b"}",
]


def _load_both(payload: bytes) -> tuple[str, str]:
    """repr of what codec's reader and plain ``json.loads`` make of ``payload`` (or the error they give)."""

    def reference() -> object:
        try:
            return json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            return f"not valid JSON ({type(exc).__name__})"

    try:
        fast: object = codec._load_json(payload)
    except codec.LegacyFormatError as exc:
        fast = str(exc)
    return repr(fast), repr(reference())


@pytest.mark.parametrize("payload", ODD_JSON)
def test_legacy_json_reads_as_json_loads_reads_it_odd_inputs(payload: bytes) -> None:
    fast, reference = _load_both(payload)
    assert fast == reference


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES, st.booleans())
def test_legacy_json_reads_as_json_loads_reads_it(value: object, compact: bool) -> None:
    text = json.dumps({"v": value}, separators=(",", ":") if compact else None, ensure_ascii=not compact)
    fast, reference = _load_both(text.encode("utf-8", "surrogatepass"))
    assert fast == reference


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_legacy_json_reads_arbitrary_bytes_as_json_loads_reads_them(tail: bytes) -> None:
    fast, reference = _load_both(b'{"a":' + tail)
    assert fast == reference


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_event_ids_are_uuid5(name: str) -> None:
    assert uuid5_text(EVENT_ID_NAMESPACE.bytes, name) == str(uuid.uuid5(EVENT_ID_NAMESPACE, name))


def _rfc3339_with_datetime(epoch_ms: int) -> str:
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


@settings(max_examples=500, deadline=None)
@given(st.integers(min_value=0, max_value=10**15))
def test_ce_time_is_formatted_as_datetime_formats_it(epoch_ms: int) -> None:
    try:
        expected: object = _rfc3339_with_datetime(epoch_ms)
    except (ValueError, OverflowError, OSError) as exc:
        expected = type(exc)
    try:
        got: object = rfc3339_ms(epoch_ms)
    except (ValueError, OverflowError, OSError) as exc:
        got = type(exc)
    assert got == expected


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-(10**16), max_value=10**16))
def test_event_time_is_the_timestamp_from_milliseconds_makes(epoch_ms: int) -> None:
    context = EventContext(
        "t", epoch_ms, Provenance(), lambda index: "id", lambda index, text: EncryptedText()
    )
    expected = Timestamp()
    try:
        expected.FromMilliseconds(epoch_ms)
    except ValueError:
        with pytest.raises(ValueError, match="Timestamp is not valid"):
            context.common(0)
        return
    assert context.common(0)["event_time"] == expected
