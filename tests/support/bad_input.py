"""A labeled corpus of bad (and good) legacy publications for the ingest + normalize path.

A :class:`FuzzPublication` is one message as it sits on a tenant's source: an SQS message exactly as
ReceiveMessage returns it (``sqs_message``), or a Pub/Sub message (``message_id``, ``data``,
``attributes``). It carries its class label, the original payload bytes, every attribute the publisher
sent and what must come of it (its canonical events, or a dead letter).

:func:`corpus` is deterministic and needs no hypothesis (a real-stack test publishes it as is);
:func:`publications` is the hypothesis strategy over the same variants. Both draw through
:class:`Choices`, so every variant is written once.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import re
import string
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from app.crypto import aead
from app.crypto.keyring import Keyring, key_set
from app.dev.simulate.traffic import Publication, TrafficConfig, TrafficGenerator
from models.legacy import codec
from models.legacy.legacy_event_pb2 import PodEvent
from models.legacy.values import urlsafe_id

if TYPE_CHECKING:
    from hypothesis.strategies import DrawFn, SearchStrategy

T = TypeVar("T")
Cloud = Literal["sqs", "pubsub"]
Transport = Literal["sqs-raw", "sqs-sns", "pubsub"]
TRANSPORTS: tuple[Transport, ...] = ("sqs-sns", "sqs-raw", "pubsub")
AttributeValue = str | bytes

LANDING_PREFIX = "carryover-legacy-"
DEFAULT_MAX_MESSAGE_BYTES = 300_000
"""Size limit the corpus is built around: a > 200 000 char message (even encrypted) fits under it."""
HUGE_TEXT_CHARS = 200_000
NESTING_DEPTH = 10_000
OCCURRED_MS = 1_767_225_600_000
MESSAGE_SENT = "carryover.collaboration.v1.MessageSent"

ACME, GLOBEX = TENANTS = ("acme-bank", "globex-capital")
TENANT_KEYS = {
    ACME: ("acme-bank/v2", [("acme-bank/v1", b"\x11" * 32), ("acme-bank/v2", b"\x12" * 32)]),
    GLOBEX: ("globex-capital/v1", [("globex-capital/v1", b"\x21" * 32)]),
}
KEYRING = Keyring.static(key_set(TENANT_KEYS))

CARRYOVER_HEADER_NAMES = (
    "source",
    "source_id",
    "source_message_id",
    "received_at",
    "tenant",
    "sns_message_id",
    "sns_topic_arn",
    "dlq_reason",
    "dlq_stage",
    "dlq_error",
    "dlq_origin",
    "dlq_original_sha256",
    "legacy.source",
    "traceparent",
    "traceparent_invalid",
    "ce_id",
    "ce_tenantid",
)
"""Attribute names a publisher may send that look like carryover's own headers."""

BAD_TRACEPARENTS = (
    "",
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",  # no flags: wrong length
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-ff",  # too long
    "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01",  # uppercase hex
    "00-00000000000000000000000000000000-b7ad6b7169203331-01",  # all-zero trace id
    "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  # all-zero parent id
    "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # version ff
    "00-0af7651916cd43dd8448eb211c80319z-b7ad6b7169203331-01",  # not hex
    "00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01",  # wrong separators
    " 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0",  # padded, 55 chars
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0\u00e9",  # non-ASCII, 55 chars
)

_SQS_TEXT = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SQS_ATTRIBUTE_NAME = re.compile(r"^(?!\.)(?!.*\.\.)(?!.*\.$)(?!(?i:aws\.|amazon\.))[A-Za-z0-9_.-]{1,256}$")
_TEXT_POOLS = (
    string.ascii_letters + string.digits + string.punctuation + " ",
    " \t\r\n\x00\x01\x1b\x7f",
    "\u00e9\u00fc\u00df\u00f1\u20ac\u2028\u200b\ufeff\ufffd",
    "\u540d\u524d\u30c6\u30b9\u30c8\U0001f600\U0001f4a9\U00010348",
)


# ---- the publication ----


@dataclass(frozen=True)
class SentAttribute:
    """One attribute the publisher sent: its value bytes and the header names it may be landed under."""

    name: str
    value: bytes
    header_names: tuple[str, ...]
    text: bool = True
    """False when the name or value is not valid text (a lone surrogate): such a message is dead-lettered."""
    in_body: bool = False
    """True for an SNS attribute: it is inside the SQS body (a dead letter of the whole body keeps it)."""


@dataclass(frozen=True, repr=False)
class FuzzPublication:
    """One labeled publication on its source, and what must come of it."""

    cls: str
    variant: str
    cloud: Cloud
    transport: Transport
    tenant: str
    original: bytes
    """The payload bytes as the publisher sent them: the SNS Message as UTF-8, the raw SQS body, the Pub/Sub
    data (text that is not valid UTF-8 encoded with ``surrogatepass``)."""
    sqs_message: dict[str, Any] | None = None
    message_id: str = ""
    data: bytes | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    valid: bool = False
    """True when it must become exactly its ``expected_ce_types`` canonical events."""
    expected_ce_types: tuple[str, ...] = ()
    expect_dead_letter: bool = False
    """True when canonical events from it would be a bug (a dead letter is the only right outcome)."""
    dead_letter_reasons: tuple[str, ...] = ()
    """The acceptable ``dlq_reason`` values when it is dead-lettered (empty: any non-empty reason)."""
    full_text: str | None = None
    """The plain text of a message.sent that must survive whole (or be dead-lettered as too_large)."""
    upstream_traceparent: bytes | None = None
    sent_attributes: tuple[SentAttribute, ...] = ()
    alternative_originals: tuple[bytes, ...] = ()
    """Other acceptable dead-letter values: the whole SQS body of an SNS envelope, the Message of a
    forged one."""
    unpublishable: str = ""
    """Why a real SQS / Pub/Sub API would refuse it ("" when it can be published)."""

    @property
    def expected_events(self) -> int:
        """How many canonical events a valid publication must become."""
        return len(self.expected_ce_types)

    @property
    def source_id(self) -> str:
        """The queue URL or subscription path it is received from."""
        return queue_url(self.tenant) if self.cloud == "sqs" else subscription_path(self.tenant)

    def describe(self) -> str:
        """Class, variant, transport and size, for assertion messages."""
        return f"{self.cls}/{self.variant} via {self.transport} to {self.tenant} ({len(self.original)} bytes)"

    def __repr__(self) -> str:
        return f"FuzzPublication<{self.describe()}: {self.original[:80]!r}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Hypothesis prints falsifying examples with this: the short form, not 300 kB of payload."""
        printer.text(repr(self))


def queue_url(tenant: str) -> str:
    """The tenant's legacy SQS queue URL."""
    return f"http://127.0.0.1:1/000000000000/{LANDING_PREFIX}{tenant}"


def subscription_path(tenant: str) -> str:
    """The tenant's legacy Pub/Sub subscription path."""
    return f"projects/p/subscriptions/{LANDING_PREFIX}{tenant}"


def topic_arn(tenant: str) -> str:
    """The tenant's legacy SNS topic ARN."""
    return f"arn:aws:sns:us-east-1:000000000000:{LANDING_PREFIX}{tenant}"


# ---- where choices come from: a seeded Random (corpus) or hypothesis (strategies) ----


class Choices(Protocol):
    """The draws a variant makes."""

    def pick(self, options: Sequence[T]) -> T:
        """One of ``options``."""
        ...

    def integer(self, low: int, high: int) -> int:
        """An int in [low, high]."""
        ...

    def binary(self, max_size: int) -> bytes:
        """Arbitrary bytes."""
        ...

    def text(self, max_size: int) -> str:
        """Arbitrary valid text (no lone surrogates)."""
        ...

    def json_value(self) -> Any:
        """A small arbitrary JSON value."""
        ...

    def rng(self) -> random.Random:
        """A seeded Random for bulk content (padding, huge texts, nonces)."""
        ...

    def message_id(self) -> str:
        """A fresh source message id."""
        ...


class RandomChoices:
    """Choices from one seeded :class:`random.Random`."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._ids = itertools.count(1)

    def pick(self, options: Sequence[T]) -> T:
        return options[self._rng.randrange(len(options))]

    def integer(self, low: int, high: int) -> int:
        return self._rng.randint(low, high)

    def binary(self, max_size: int) -> bytes:
        return self._rng.randbytes(self._rng.randint(0, max_size))

    def text(self, max_size: int) -> str:
        size = self._rng.randint(0, max_size)
        return "".join(self._rng.choice(self._rng.choice(_TEXT_POOLS)) for _ in range(size))

    def json_value(self, depth: int = 0) -> Any:
        kind = self._rng.randrange(8 if depth < 3 else 6)
        if kind == 0:
            return None
        if kind == 1:
            return self._rng.random() < 0.5
        if kind == 2:
            return self._rng.randint(-(2**70), 2**70)
        if kind == 3:
            return self._rng.uniform(-1e300, 1e300)
        if kind in (4, 5):
            return self.text(12)
        if kind == 6:
            return [self.json_value(depth + 1) for _ in range(self._rng.randint(0, 4))]
        return {self.text(8): self.json_value(depth + 1) for _ in range(self._rng.randint(0, 4))}

    def rng(self) -> random.Random:
        return random.Random(self._rng.getrandbits(64))

    def message_id(self) -> str:
        return f"fz-{next(self._ids):06d}"


_HYPOTHESIS_IDS = itertools.count(1)


class HypothesisChoices:
    """Choices drawn by hypothesis (so failures shrink)."""

    def __init__(self, draw: DrawFn) -> None:
        from hypothesis import strategies as st  # noqa: PLC0415 - the corpus must import without hypothesis

        self._st = st
        self._draw = draw

    def pick(self, options: Sequence[T]) -> T:
        return self._draw(self._st.sampled_from(options))

    def integer(self, low: int, high: int) -> int:
        return self._draw(self._st.integers(low, high))

    def binary(self, max_size: int) -> bytes:
        return self._draw(self._st.binary(max_size=max_size))

    def text(self, max_size: int) -> str:
        return self._draw(self._st.text(max_size=max_size))

    def json_value(self) -> Any:
        st = self._st
        scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
        return self._draw(
            st.recursive(
                scalars,
                lambda inner: (
                    st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
                ),
                max_leaves=8,
            )
        )

    def rng(self) -> random.Random:
        return random.Random(self._draw(self._st.integers(0, 2**64 - 1)))

    def message_id(self) -> str:
        return f"fz-h{next(_HYPOTHESIS_IDS):06d}"


# ---- building blocks ----


def utf8(text: str) -> bytes:
    """``text`` as UTF-8, lone surrogates included (``surrogatepass``)."""
    return text.encode("utf-8", "surrogatepass")


def is_text(value: str) -> bool:
    """True when ``value`` is valid text (encodes to UTF-8: no lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _value_bytes(value: AttributeValue) -> bytes:
    return value if isinstance(value, bytes) else utf8(value)


def _sent(
    name: str, value: AttributeValue, header_names: Sequence[str], *, in_body: bool = False
) -> SentAttribute:
    text = is_text(name) and (isinstance(value, bytes) or is_text(value))
    return SentAttribute(name, _value_bytes(value), tuple(header_names), text, in_body)


def _own_or_legacy(name: str) -> tuple[str, ...]:
    return (name, f"legacy.{name}")


def _sqs_attribute(value: AttributeValue) -> dict[str, Any]:
    if isinstance(value, bytes):
        return {"DataType": "Binary", "BinaryValue": value}
    if value.isdigit() and len(value) < 30:
        return {"DataType": "Number", "StringValue": value}
    return {"DataType": "String", "StringValue": value}


def _sns_attribute(value: AttributeValue) -> dict[str, str]:
    if isinstance(value, bytes):
        return {"Type": "Binary", "Value": base64.b64encode(value).decode()}
    return {"Type": "Number" if value.isdigit() and len(value) < 30 else "String", "Value": value}


def _pubsub_value(value: AttributeValue) -> str:
    return base64.b64encode(value).decode() if isinstance(value, bytes) else value


def _upstream(attributes: Mapping[str, AttributeValue]) -> bytes | None:
    value = attributes.get("traceparent")
    return None if value is None else _value_bytes(value)


def sns_envelope(
    tenant: str, message: Any, attributes: Mapping[str, Any] | None, *, message_id: str, **fields: Any
) -> dict[str, Any]:
    """An SNS notification as delivered to SQS without raw delivery; ``fields`` override (None: drop)."""
    envelope: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": topic_arn(tenant),
        "Message": message,
        "Timestamp": "2026-01-01T00:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": base64.b64encode(b"not verified by carryover").decode(),
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }
    if attributes:
        envelope["MessageAttributes"] = attributes
    for name, value in fields.items():
        if value is None:
            envelope.pop(name, None)
        else:
            envelope[name] = value
    return envelope


def _sqs_message(message_id: str, body: str, attributes: Mapping[str, AttributeValue]) -> dict[str, Any]:
    message: dict[str, Any] = {
        "MessageId": message_id,
        "ReceiptHandle": f"rh-{message_id}",
        "Body": body,
        "Attributes": {"ApproximateReceiveCount": "1"},
    }
    if attributes:
        message["MessageAttributes"] = {name: _sqs_attribute(value) for name, value in attributes.items()}
    return message


def sqs_raw(
    c: Choices,
    tenant: str,
    body: str,
    attributes: Mapping[str, AttributeValue] | None = None,
    *,
    forged_envelope: bool = False,
    **expect: Any,
) -> FuzzPublication:
    """A raw-delivery SQS message: ``body`` is the payload, ``attributes`` SQS message attributes.

    ``forged_envelope``: the body only looks like an SNS envelope; its attributes may land as ``sqs.<name>``
    too, and its Message (when a string) is an acceptable dead-letter value.
    """
    attributes = dict(attributes or {})
    message_id = c.message_id()
    names = (lambda n: (n, f"legacy.{n}", f"sqs.{n}")) if forged_envelope else _own_or_legacy
    alternatives: tuple[bytes, ...] = ()
    if forged_envelope:
        try:
            inner = json.loads(body)
        except (ValueError, RecursionError):
            inner = None
        if isinstance(inner, dict) and isinstance(inner.get("Message"), str):
            alternatives = (utf8(inner["Message"]),)
    return FuzzPublication(
        cls="",
        variant="",
        cloud="sqs",
        transport="sqs-raw",
        tenant=tenant,
        original=utf8(body),
        sqs_message=_sqs_message(message_id, body, attributes),
        message_id=message_id,
        sent_attributes=tuple(_sent(n, v, names(n)) for n, v in attributes.items()),
        upstream_traceparent=_upstream(attributes),
        alternative_originals=alternatives,
        **expect,
    )


def sqs_sns(
    c: Choices,
    tenant: str,
    message: str,
    attributes: Mapping[str, AttributeValue] | None = None,
    *,
    sqs_attributes: Mapping[str, AttributeValue] | None = None,
    envelope: Mapping[str, Any] | None = None,
    **expect: Any,
) -> FuzzPublication:
    """An SNS notification delivered to SQS: ``message`` and ``attributes`` inside the envelope;
    ``sqs_attributes`` on the SQS message itself (landed as ``sqs.<name>``); ``envelope`` overrides fields.
    """
    attributes = dict(attributes or {})
    sqs_attributes = dict(sqs_attributes or {})
    message_id = c.message_id()
    document = sns_envelope(
        tenant,
        message,
        {name: _sns_attribute(value) for name, value in attributes.items()},
        message_id=f"sns-{message_id}",
        **dict(envelope or {}),
    )
    body = json.dumps(document)  # ensure_ascii: lone surrogates travel as \ud800 escapes
    sent = [_sent(n, v, _own_or_legacy(n), in_body=True) for n, v in attributes.items()]
    sent += [_sent(n, v, (f"sqs.{n}", f"legacy.sqs.{n}")) for n, v in sqs_attributes.items()]
    return FuzzPublication(
        cls="",
        variant="",
        cloud="sqs",
        transport="sqs-sns",
        tenant=tenant,
        original=utf8(message),
        sqs_message=_sqs_message(message_id, body, sqs_attributes),
        message_id=message_id,
        sent_attributes=tuple(sent),
        upstream_traceparent=_upstream(attributes),
        alternative_originals=(utf8(body),),
        **expect,
    )


def pubsub(
    c: Choices,
    tenant: str,
    data: bytes | None,
    attributes: Mapping[str, AttributeValue] | None = None,
    **expect: Any,
) -> FuzzPublication:
    """A Pub/Sub message (``data`` already base64-decoded); bytes attribute values travel as base64."""
    strings = {name: _pubsub_value(value) for name, value in (attributes or {}).items()}
    return FuzzPublication(
        cls="",
        variant="",
        cloud="pubsub",
        transport="pubsub",
        tenant=tenant,
        original=data or b"",
        message_id=c.message_id(),
        data=data,
        attributes=strings,
        sent_attributes=tuple(_sent(n, v, _own_or_legacy(n)) for n, v in strings.items()),
        upstream_traceparent=_upstream(strings),
        **expect,
    )


def deliver(
    c: Choices,
    tenant: str,
    payload: bytes,
    attributes: Mapping[str, AttributeValue] | None = None,
    *,
    transports: Sequence[Transport] = TRANSPORTS,
    **expect: Any,
) -> FuzzPublication:
    """``payload`` on one of ``transports`` (Pub/Sub only when it is not UTF-8: SQS carries text)."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        transports = ("pubsub",)
    transport = c.pick(transports)
    if transport == "pubsub":
        return pubsub(c, tenant, payload, attributes, **expect)
    if transport == "sqs-raw":
        return sqs_raw(c, tenant, text, attributes, **expect)
    return sqs_sns(c, tenant, text, attributes, **expect)


SQS_SENDERS: tuple[Callable[..., FuzzPublication], ...] = (sqs_raw, sqs_sns)


@dataclass(frozen=True)
class Context:
    """What variants build on: the size limit and a pool of valid simulator publications."""

    max_message_bytes: int
    pool: tuple[Publication, ...]

    def valid(self, c: Choices, *, tenant: str | None = None, encoding: str | None = None) -> Publication:
        """A valid publication from the pool (of ``tenant``, with ``encoding``)."""
        options = [
            p
            for p in self.pool
            if (tenant is None or p.tenant_id == tenant) and (encoding is None or p.encoding == encoding)
        ]
        return c.pick(options)


@lru_cache(maxsize=4)
def traffic_pool(seed: int, size: int = 300) -> tuple[Publication, ...]:
    """``size`` valid publications of the simulator (every tenant, type, version and encoding)."""
    config = TrafficConfig(TENANTS, conversations_per_tenant=3, seed=seed)
    return tuple(TrafficGenerator(config, KEYRING).take(size))


def expected(publication: Publication) -> dict[str, Any]:
    """The expectation fields of a valid simulator publication."""
    return {"valid": True, "expected_ce_types": tuple(e.ce_type for e in publication.expected)}


def other_tenant(tenant: str) -> str:
    """The other simulated tenant."""
    return GLOBEX if tenant == ACME else ACME


def seal(
    inner: bytes,
    *,
    tenant: str,
    key_tenant: str | None = None,
    key_id: str | None = None,
    wrapper_tenant: str | None = "",
    nonce: bytes | None = None,
) -> bytes:
    """The encryption wrapper around ``inner``: sealed for ``tenant`` with a key of ``key_tenant``.

    ``key_id`` defaults to the key owner's first key; ``wrapper_tenant`` "" means ``tenant``, None omits it.
    """
    owner = key_tenant or tenant
    keys = dict(TENANT_KEYS[owner][1])
    kid = key_id or next(iter(keys))
    key = keys.get(kid, keys[next(iter(keys))])
    blob = aead.encrypt(key, inner, tenant_id=tenant, key_id=kid, nonce=nonce or bytes(12))
    return codec.encode_encrypted(tenant if wrapper_tenant == "" else wrapper_tenant, kid, blob)


def message_sent(
    tenant: str | None, markup: str, rng: random.Random, *, version: int = 2, encoding: str = "json"
) -> bytes:
    """A MESSAGE_SENT legacy payload (JSON or base64 protobuf) with random ids."""
    attrs: dict[str, Any] = {
        "conversation_id": urlsafe_id(rng.randbytes(18)),
        "message_id": urlsafe_id(rng.randbytes(15)),
        "sender_user_id": str(rng.randrange(10**13, 10**15)),
        "markup": markup,
    }
    encode = codec.encode_json if encoding == "json" else codec.encode_protobuf
    return encode("MESSAGE_SENT", version, attrs, tenant_id=tenant, occurred_ms=OCCURRED_MS)


def publisher_attributes(c: Choices, tenant: str) -> dict[str, AttributeValue]:
    """Attributes a legacy publisher usually sets (sometimes none)."""
    if c.integer(0, 3) == 0:
        return {}
    return {"tenantId": tenant, "publicationId": c.message_id(), "contentEncoding": "json"}


def pad_json(document: bytes, size: int) -> bytes:
    """A JSON object document padded with spaces before its closing brace to exactly ``size`` bytes."""
    return document[:-1] + b" " * (size - len(document)) + b"}"


def deep_json(depth: int = NESTING_DEPTH, *, array: bool = False) -> str:
    """JSON nested ``depth`` levels (objects or arrays)."""
    return "[" * depth + "]" * depth if array else '{"a":' * depth + "1" + "}" * depth


def plain_text(rng: random.Random, size: int) -> str:
    """``size`` chars of letters and spaces, letters at both ends (its MessageML plain text is itself)."""
    return "x" + "".join(rng.choices(string.ascii_lowercase + " ", k=size - 2)) + "x"


# ---- the classes and their variants ----

Variant = Callable[[Choices, Context], FuzzPublication]
VARIANTS: dict[str, list[Variant]] = {}


def variant(cls: str) -> Callable[[Variant], Variant]:
    """Registers a variant of class ``cls``."""

    def register(build: Variant) -> Variant:
        VARIANTS.setdefault(cls, []).append(build)
        return build

    return register


@variant("valid")
def simulator_publication(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c)
    return deliver(c, pub.tenant_id, pub.body, pub.attributes, **expected(pub))


@variant("random_bytes")
def random_binary(c: Choices, ctx: Context) -> FuzzPublication:
    return pubsub(c, c.pick(TENANTS), c.binary(600), expect_dead_letter=True)


@variant("random_bytes")
def random_text(c: Choices, ctx: Context) -> FuzzPublication:
    tenant = c.pick(TENANTS)
    text = c.text(300)
    return deliver(c, tenant, utf8(text), publisher_attributes(c, tenant), expect_dead_letter=True)


@variant("empty_body")
def empty_pubsub_data(c: Choices, ctx: Context) -> FuzzPublication:
    tenant = c.pick(TENANTS)
    data = c.pick((None, b""))
    return pubsub(c, tenant, data, publisher_attributes(c, tenant), expect_dead_letter=True)


@variant("empty_body")
def empty_sqs_body(c: Choices, ctx: Context) -> FuzzPublication:
    tenant = c.pick(TENANTS)
    return sqs_raw(c, tenant, c.pick(("", " ", "\n\t \r\n")), expect_dead_letter=True)


@variant("empty_body")
def empty_sns_message(c: Choices, ctx: Context) -> FuzzPublication:
    tenant = c.pick(TENANTS)
    return sqs_sns(c, tenant, c.pick(("", "  ")), publisher_attributes(c, tenant), expect_dead_letter=True)


@variant("truncated_json")
def truncated_event(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c, encoding=c.pick(("json", "encrypted")))
    cut = pub.body[: c.integer(1, len(pub.body) - 2)]
    return deliver(c, pub.tenant_id, cut, pub.attributes, expect_dead_letter=True)


@variant("truncated_json")
def truncated_sns_envelope(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c, encoding="json")
    body = json.dumps(sns_envelope(pub.tenant_id, pub.body.decode(), None, message_id=c.message_id()))
    start = body.index('"Message"')
    cut = body[: c.integer(start, len(body) - 2)]
    return sqs_raw(c, pub.tenant_id, cut, forged_envelope=True, expect_dead_letter=True)


@variant("wrong_shape_json")
def json_not_an_object(c: Choices, ctx: Context) -> FuzzPublication:
    tenant = c.pick(TENANTS)
    value = c.json_value()
    if isinstance(value, dict):
        value = [value]
    payload = json.dumps(value).encode()
    return deliver(c, tenant, payload, publisher_attributes(c, tenant), expect_dead_letter=True)


@variant("wrong_shape_json")
def json_field_removed(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c, encoding="json")
    document = json.loads(pub.body)
    del document[c.pick(sorted(document))]
    return deliver(c, pub.tenant_id, json.dumps(document).encode(), pub.attributes)


@variant("wrong_shape_json")
def json_field_of_wrong_type(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c, encoding="json")
    document = json.loads(pub.body)
    name = c.pick(sorted(document))
    replacement = c.json_value()
    if type(replacement) is type(document[name]):
        replacement = [replacement]
    document[name] = replacement
    return deliver(c, pub.tenant_id, json.dumps(document).encode(), pub.attributes)


@variant("wrong_shape_json")
def json_bad_type_or_version(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c, encoding="json")
    document = json.loads(pub.body)
    type_key = "eventType" if "eventType" in document else "type"
    version_key = "schemaVersion" if type_key == "eventType" else "version"
    if c.integer(0, 1):
        document[type_key] = c.pick((5, None, [], "", "message_sent", "MESSAGE_SENT\x00", {"x": 1}))
    else:
        document[version_key] = c.pick(("2", 2.5, True, -1, 0, 10**20, None, [2]))
    return deliver(c, pub.tenant_id, json.dumps(document).encode(), pub.attributes, expect_dead_letter=True)


@variant("wrong_shape_json")
def wrapper_fields_of_wrong_type(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c, encoding="encrypted")
    document = json.loads(pub.body)
    name = c.pick(("tenantId", "keyId", "ciphertext"))
    document[name] = c.pick((7, None, ["x"], {"k": "v"}, True, 1.5))
    if document[name] is None and name != "ciphertext":
        document[name] = 0
    return deliver(c, pub.tenant_id, json.dumps(document).encode(), pub.attributes, expect_dead_letter=True)


@variant("wrong_shape_json")
def json_odd_numbers(c: Choices, ctx: Context) -> FuzzPublication:
    tenant = c.pick(TENANTS)
    value = c.pick(
        ("1e400", "-1e400", "NaN", "Infinity", "9" * 5000, "-0", "1.0", "123456789012345678901234567890")
    )
    payload = f'{{"type":"MESSAGE_SENT","version":1,"podId":"{tenant}","timestamp":{value},'
    payload += '"streamId":"AAAA","messageId":"AAAA","fromUserId":1,"message":"hi"}'
    return deliver(c, tenant, payload.encode(), expect_dead_letter=True)


@variant("wrong_shape_json")
def json_duplicate_keys(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c, encoding="json")
    key = c.pick(sorted(json.loads(pub.body)))
    payload = pub.body[:-1] + f",{json.dumps(key)}:{json.dumps(c.json_value())}}}".encode()
    return deliver(c, pub.tenant_id, payload, pub.attributes)


@variant("deep_nesting")
def deep_sqs_body(c: Choices, ctx: Context) -> FuzzPublication:
    tenant = c.pick(TENANTS)
    return sqs_raw(c, tenant, deep_json(array=bool(c.integer(0, 1))), expect_dead_letter=True)


@variant("deep_nesting")
def deep_sns_envelope_body(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c, encoding="json")
    head = json.dumps(sns_envelope(pub.tenant_id, pub.body.decode(), None, message_id=c.message_id()))
    body = head[:-1] + ', "MessageAttributes": ' + deep_json() + "}"
    return sqs_raw(c, pub.tenant_id, body, forged_envelope=True, expect_dead_letter=True)


@variant("deep_nesting")
def deep_sns_message(c: Choices, ctx: Context) -> FuzzPublication:
    tenant = c.pick(TENANTS)
    return sqs_sns(c, tenant, deep_json(array=bool(c.integer(0, 1))), expect_dead_letter=True)


@variant("deep_nesting")
def deep_pubsub_data(c: Choices, ctx: Context) -> FuzzPublication:
    return pubsub(
        c, c.pick(TENANTS), deep_json(array=bool(c.integer(0, 1))).encode(), expect_dead_letter=True
    )


@variant("deep_nesting")
def deep_field_in_event(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c, encoding="json")
    payload = b'{"x":' + deep_json().encode() + b"," + pub.body[1:]
    return deliver(c, pub.tenant_id, payload, pub.attributes)


@variant("deep_nesting")
def brackets_in_message_text(c: Choices, ctx: Context) -> FuzzPublication:
    """Valid: a message whose text is hundreds of brackets (strings, not nesting)."""
    tenant = c.pick(TENANTS)
    brackets = c.pick(("[", "{", "[{")) * c.integer(201, 2_000)
    payload = message_sent(tenant, f"<messageML>look {brackets}</messageML>", c.rng(), version=c.pick((1, 2)))
    return deliver(c, tenant, payload, valid=True, expected_ce_types=(MESSAGE_SENT,))


@variant("deep_nesting")
def deep_inside_encryption(c: Choices, ctx: Context) -> FuzzPublication:
    tenant = c.pick(TENANTS)
    payload = seal(deep_json().encode(), tenant=tenant)
    return deliver(c, tenant, payload, expect_dead_letter=True)


@variant("lone_surrogates")
def surrogate_in_sns_message(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c, encoding="json")
    text = pub.body.decode()
    at = c.integer(1, len(text) - 1)
    message = text[:at] + c.pick(("\ud800", "\udfff", "\udc80x")) + text[at:]
    return sqs_sns(c, pub.tenant_id, message, pub.attributes, expect_dead_letter=True)


@variant("lone_surrogates")
def surrogate_in_sns_field(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c, encoding="json")
    name = c.pick(("MessageId", "TopicArn", "Subject", "Timestamp"))
    value = topic_arn(pub.tenant_id) + "\ud800" if name == "TopicArn" else "id-\udfff"
    return sqs_sns(c, pub.tenant_id, pub.body.decode(), pub.attributes, envelope={name: value})


@variant("lone_surrogates")
def surrogate_in_sns_attribute(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c, encoding="json")
    attributes: dict[str, AttributeValue] = dict(pub.attributes)
    if c.integer(0, 1):
        attributes["bad\ud800name"] = "v"
    else:
        attributes[c.pick(("note", "traceparent", "tenant"))] = "v\udc80"
    return sqs_sns(c, pub.tenant_id, pub.body.decode(), attributes, expect_dead_letter=True)


@variant("lone_surrogates")
def surrogate_in_sqs_attribute(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c, encoding="json")
    attributes: dict[str, AttributeValue] = dict(pub.attributes)
    if c.integer(0, 1):
        attributes["\udfffname"] = "v"
    else:
        attributes["note"] = "\ud800"
    return sqs_raw(c, pub.tenant_id, pub.body.decode(), attributes, expect_dead_letter=True)


@variant("lone_surrogates")
def surrogate_in_sqs_body(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c, encoding="json")
    text = pub.body.decode()
    body = text[:-1] + ',"x":"\ud800"}'
    return sqs_raw(c, pub.tenant_id, body, pub.attributes, expect_dead_letter=True)


@variant("lone_surrogates")
def surrogate_in_pubsub_attribute(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c, encoding="json")
    attributes: dict[str, AttributeValue] = dict(pub.attributes)
    if c.integer(0, 1):
        attributes["x\ud800"] = "v"
    else:
        attributes["traceparent"] = "00-\udc00"
    return pubsub(c, pub.tenant_id, pub.body, attributes, expect_dead_letter=True)


@variant("lone_surrogates")
def escaped_surrogate_in_payload(c: Choices, ctx: Context) -> FuzzPublication:
    tenant = c.pick(TENANTS)
    payload = message_sent(tenant, "hello \\ud800 world", c.rng()).replace(b"\\\\ud800", b"\\ud800")
    return deliver(c, tenant, payload)


@variant("bad_base64")
def base64_bad_padding(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c, encoding="protobuf")
    text = pub.body.rstrip(b"=")
    text = text[:-1] if len(text) % 4 == 0 else text
    return deliver(c, pub.tenant_id, text, pub.attributes, expect_dead_letter=True)


@variant("bad_base64")
def base64_bad_alphabet(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c, encoding="protobuf")
    at = c.integer(0, len(pub.body.rstrip(b"=")) - 1)
    bad = c.pick(("*", "!", "@", "$", "%", ".", ",", ";", "\u00e9", "-", "_"))
    payload = pub.body[:at] + bad.encode() + pub.body[at + 1 :]
    return deliver(c, pub.tenant_id, payload, pub.attributes, expect_dead_letter=True)


@variant("bad_base64")
def base64_inner_whitespace(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c, encoding="protobuf")
    at = c.integer(1, len(pub.body) - 2)
    payload = pub.body[:at] + c.pick((b" ", b"\n", b"\t", b"\r\n")) + pub.body[at:]
    return deliver(c, pub.tenant_id, payload, pub.attributes, expect_dead_letter=True)


@variant("bad_base64")
def base64_of_json(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c, encoding="json")
    return deliver(c, pub.tenant_id, base64.b64encode(pub.body), pub.attributes, expect_dead_letter=True)


@variant("bad_base64")
def ciphertext_not_base64(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c, encoding="encrypted")
    document = json.loads(pub.body)
    document["ciphertext"] = c.pick(("***", document["ciphertext"][:-1], document["ciphertext"] + "!", "a b"))
    return deliver(c, pub.tenant_id, json.dumps(document).encode(), pub.attributes, expect_dead_letter=True)


@variant("bad_protobuf")
def protobuf_random(c: Choices, ctx: Context) -> FuzzPublication:
    tenant = c.pick(TENANTS)
    raw = c.binary(300) or b"\xff"
    return deliver(c, tenant, base64.b64encode(raw), expect_dead_letter=True)


@variant("bad_protobuf")
def protobuf_truncated(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c, encoding="protobuf")
    raw = base64.b64decode(pub.body)
    cut = raw[: c.integer(1, len(raw) - 1)]
    return deliver(c, pub.tenant_id, base64.b64encode(cut), pub.attributes)


@variant("bad_protobuf")
def protobuf_unknown_type_or_version(c: Choices, ctx: Context) -> FuzzPublication:
    tenant = c.pick(TENANTS)
    event = c.pick(
        (
            PodEvent(event_type="VOICE_CALL_STARTED", version=1, pod_id=tenant, timestamp=OCCURRED_MS),
            PodEvent(event_type="MESSAGE_SENT", version=99, pod_id=tenant, timestamp=OCCURRED_MS),
            PodEvent(pod_id=tenant, message="no event type", timestamp=OCCURRED_MS),
            PodEvent(event_type="MESSAGE_SENT", version=1, pod_id=tenant, timestamp=-5),
        )
    )
    return deliver(c, tenant, base64.b64encode(event.SerializeToString()), expect_dead_letter=True)


@variant("bad_protobuf")
def protobuf_crafted_wire(c: Choices, ctx: Context) -> FuzzPublication:
    tenant = c.pick(TENANTS)
    raw = c.pick(
        (
            b"\x0a\x02\xff\xfe",  # event_type: invalid UTF-8
            b"\x08\x01",  # event_type with a varint wire type
            b"\x4a\xff\xff\xff\xff\xff\xff\xff\xff\x7f",  # message: length 2^63-ish
            b"\x9b\x06" * NESTING_DEPTH,  # 10 000 nested start-groups
            b"\x0a\x0cMESSAGE_SENT\x10\x01\x4a\x05\xc0\xaf\xed\xa0\x80",  # overlong + surrogate bytes
        )
    )
    return deliver(c, tenant, base64.b64encode(raw), expect_dead_letter=True)


@variant("bad_utf8")
def invalid_utf8_in_json(c: Choices, ctx: Context) -> FuzzPublication:
    tenant = c.pick(TENANTS)
    bad = c.pick((b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\x80", b"\xf8\x88\x80\x80\x80"))
    payload = message_sent(tenant, "hello MARK world", c.rng()).replace(b"MARK", bad)
    return pubsub(c, tenant, payload, publisher_attributes(c, tenant), expect_dead_letter=True)


@variant("bad_utf8")
def invalid_utf8_data(c: Choices, ctx: Context) -> FuzzPublication:
    return pubsub(c, c.pick(TENANTS), b"\xff" + c.binary(200), expect_dead_letter=True)


@variant("bad_utf8")
def invalid_utf8_inside_encryption(c: Choices, ctx: Context) -> FuzzPublication:
    tenant = c.pick(TENANTS)
    inner = message_sent(tenant, "hello MARK", c.rng()).replace(b"MARK", b"\xff\xfe\xc0")
    return deliver(c, tenant, seal(inner, tenant=tenant), expect_dead_letter=True)


@variant("bad_utf8")
def invalid_utf8_binary_attribute(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c)
    attributes: dict[str, AttributeValue] = dict(pub.attributes)
    attributes[c.pick(("note", "traceparent", "tenant", "tenantId"))] = b"\xff\xfe\x00" + c.binary(40)
    send = c.pick(SQS_SENDERS)
    return send(c, pub.tenant_id, pub.body.decode(), attributes, **expected(pub))


def _encrypted_parts(c: Choices, tenant: str) -> tuple[bytes, str, bytes]:
    """A valid inner payload, a live key id of ``tenant`` and its ciphertext."""
    inner = message_sent(
        c.pick((tenant, None)), "quarterly numbers", c.rng(), encoding=c.pick(("json", "pb"))
    )
    key_id, key = c.pick(TENANT_KEYS[tenant][1])
    return (
        inner,
        key_id,
        aead.encrypt(key, inner, tenant_id=tenant, key_id=key_id, nonce=c.rng().randbytes(12)),
    )


@variant("tampered_ciphertext")
def ciphertext_bit_flipped(c: Choices, ctx: Context) -> FuzzPublication:
    tenant = c.pick(TENANTS)
    _, key_id, blob = _encrypted_parts(c, tenant)
    flipped = bytearray(blob)
    flipped[c.integer(0, len(blob) - 1)] ^= 1 << c.integer(0, 7)
    payload = codec.encode_encrypted(tenant, key_id, bytes(flipped))
    return deliver(c, tenant, payload, expect_dead_letter=True, dead_letter_reasons=("decrypt_failed",))


@variant("tampered_ciphertext")
def ciphertext_cut_or_extended(c: Choices, ctx: Context) -> FuzzPublication:
    tenant = c.pick(TENANTS)
    _, key_id, blob = _encrypted_parts(c, tenant)
    changed = c.pick((blob[: c.integer(0, len(blob) - 1)], blob + c.binary(20) + b"\x00"))
    payload = codec.encode_encrypted(tenant, key_id, changed)
    return deliver(c, tenant, payload, expect_dead_letter=True, dead_letter_reasons=("decrypt_failed",))


@variant("tampered_ciphertext")
def ciphertext_relabelled_key(c: Choices, ctx: Context) -> FuzzPublication:
    inner, _, _ = _encrypted_parts(c, ACME)
    (old, old_key), (new, _) = TENANT_KEYS[ACME][1]
    blob = aead.encrypt(old_key, inner, tenant_id=ACME, key_id=old, nonce=c.rng().randbytes(12))
    payload = codec.encode_encrypted(ACME, new, blob)  # says the other live key
    return deliver(c, ACME, payload, expect_dead_letter=True, dead_letter_reasons=("decrypt_failed",))


@variant("unknown_key")
def key_id_retired(c: Choices, ctx: Context) -> FuzzPublication:
    tenant = c.pick(TENANTS)
    inner, _, _ = _encrypted_parts(c, tenant)
    key_id = c.pick(
        (
            f"{tenant}/retired-{c.integer(0, 999)}",
            f"{tenant}/v9",
            "../../etc/passwd",
            "\u043a\u043b\u044e\u0447",
        )
    )
    payload = seal(inner, tenant=tenant, key_id=key_id)
    return deliver(c, tenant, payload, expect_dead_letter=True, dead_letter_reasons=("unknown_key_id",))


@variant("unknown_key")
def key_id_huge_or_blank(c: Choices, ctx: Context) -> FuzzPublication:
    tenant = c.pick(TENANTS)
    inner, _, _ = _encrypted_parts(c, tenant)
    key_id = c.pick(("k" * 10_000, " ", "\t"))
    payload = seal(inner, tenant=tenant, key_id=key_id)
    return deliver(
        c, tenant, payload, expect_dead_letter=True, dead_letter_reasons=("unknown_key_id", "malformed")
    )


@variant("unknown_key")
def key_id_of_other_tenant(c: Choices, ctx: Context) -> FuzzPublication:
    tenant = c.pick(TENANTS)
    inner, _, _ = _encrypted_parts(c, tenant)
    other = other_tenant(tenant)
    payload = seal(inner, tenant=tenant, key_tenant=other, key_id=TENANT_KEYS[other][1][0][0])
    return deliver(c, tenant, payload, expect_dead_letter=True, dead_letter_reasons=("unknown_key_id",))


CROSS_TENANT_REASONS = ("tenant_mismatch", "unknown_key_id", "decrypt_failed")


@variant("cross_tenant_key")
def encrypted_for_other_tenant(c: Choices, ctx: Context) -> FuzzPublication:
    source = c.pick(TENANTS)
    other = other_tenant(source)
    inner, _, _ = _encrypted_parts(c, other)
    wrapper_tenant = c.pick(("", None))  # the other tenant's wrapper, or one without tenantId
    payload = seal(inner, tenant=other, wrapper_tenant=wrapper_tenant, nonce=c.rng().randbytes(12))
    return deliver(c, source, payload, expect_dead_letter=True, dead_letter_reasons=CROSS_TENANT_REASONS)


@variant("cross_tenant_key")
def wrapper_claims_source_tenant(c: Choices, ctx: Context) -> FuzzPublication:
    source = c.pick(TENANTS)
    other = other_tenant(source)
    inner, _, _ = _encrypted_parts(c, other)
    payload = seal(inner, tenant=other, wrapper_tenant=source)
    return deliver(c, source, payload, expect_dead_letter=True, dead_letter_reasons=CROSS_TENANT_REASONS)


@variant("cross_tenant_key")
def inner_claims_other_tenant(c: Choices, ctx: Context) -> FuzzPublication:
    source = c.pick(TENANTS)
    inner = message_sent(other_tenant(source), "not yours", c.rng(), encoding=c.pick(("json", "pb")))
    payload = seal(inner, tenant=source)
    return deliver(c, source, payload, expect_dead_letter=True, dead_letter_reasons=CROSS_TENANT_REASONS)


@variant("cross_tenant_key")
def plain_event_of_other_tenant(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c, encoding=c.pick(("json", "protobuf")))
    source = other_tenant(pub.tenant_id)
    return deliver(
        c, source, pub.body, pub.attributes, expect_dead_letter=True, dead_letter_reasons=CROSS_TENANT_REASONS
    )


def _forged(c: Choices, ctx: Context, expect_dead_letter: bool = True, **fields: Any) -> FuzzPublication:
    pub = ctx.valid(c, encoding="json")
    sns = {"note": {"Type": "String", "Value": "kept"}}
    document = sns_envelope(pub.tenant_id, pub.body.decode(), sns, message_id=c.message_id(), **fields)
    sqs_attributes: dict[str, AttributeValue] = {"origin": "forger"} if c.integer(0, 1) else {}
    return sqs_raw(
        c,
        pub.tenant_id,
        json.dumps(document),
        sqs_attributes,
        forged_envelope=True,
        expect_dead_letter=expect_dead_letter,
    )


@variant("forged_envelope")
def envelope_not_a_notification(c: Choices, ctx: Context) -> FuzzPublication:
    kind = c.pick(("SubscriptionConfirmation", "UnsubscribeConfirmation", "notification", "", 5, [], False))
    return _forged(c, ctx, Type=kind)


@variant("forged_envelope")
def envelope_message_not_a_string(c: Choices, ctx: Context) -> FuzzPublication:
    return _forged(c, ctx, Message=c.pick(({"eventType": "MESSAGE_SENT"}, 5, [], True, 1.5)))


@variant("forged_envelope")
def envelope_attributes_not_an_object(c: Choices, ctx: Context) -> FuzzPublication:
    return _forged(c, ctx, MessageAttributes=c.pick((["a"], "a", 5, True)))


@variant("forged_envelope")
def envelope_attribute_not_an_object(c: Choices, ctx: Context) -> FuzzPublication:
    return _forged(c, ctx, MessageAttributes={"note": c.pick((5, "s", ["x"], True))})


@variant("forged_envelope")
def envelope_binary_attribute_not_base64(c: Choices, ctx: Context) -> FuzzPublication:
    value = c.pick(("***", "YWJj=ZGVm", "not base64!", 5, {"x": 1}))
    return _forged(c, ctx, MessageAttributes={"blob": {"Type": "Binary", "Value": value}})


@variant("forged_envelope")
def envelope_odd_fields(c: Choices, ctx: Context) -> FuzzPublication:
    name = c.pick(("TopicArn", "MessageId", "Timestamp", "Signature"))
    value = c.pick((5, {"x": 1}, ["a"], True, "arn:aws:sns:us-east-1:1:" + LANDING_PREFIX + GLOBEX))
    return _forged(c, ctx, expect_dead_letter=False, **{name: value})


@variant("forged_envelope")
def envelope_duplicate_message(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c, encoding="json")
    head = json.dumps(sns_envelope(pub.tenant_id, pub.body.decode(), None, message_id=c.message_id()))
    body = head[:-1] + ', "Message": ' + json.dumps(c.pick(({"x": 1}, None, 7))) + "}"
    return sqs_raw(c, pub.tenant_id, body, forged_envelope=True, expect_dead_letter=True)


def _odd_values(c: Choices, names: Sequence[str], *, binary: bool) -> dict[str, AttributeValue]:
    values: dict[str, AttributeValue] = {}
    for name in names:
        kind = c.integer(0, 4 if binary else 3)
        values[name] = (
            c.text(64),
            "",
            "x" * c.integer(1, 1024),
            "\x00garbage\n" + c.text(8),
            b"\x00\xff" + c.binary(32),
        )[kind]
    return values


@variant("odd_attributes")
def carryover_named_sqs_attributes(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c)
    names = [c.pick(CARRYOVER_HEADER_NAMES) for _ in range(c.integer(1, 6))]
    attributes = {**pub.attributes, **_odd_values(c, names, binary=True)}
    return sqs_raw(c, pub.tenant_id, pub.body.decode(), attributes, **expected(pub))


@variant("odd_attributes")
def carryover_named_sns_attributes(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c)
    names = [c.pick(CARRYOVER_HEADER_NAMES) for _ in range(c.integer(1, 6))]
    attributes = {**pub.attributes, **_odd_values(c, names, binary=True)}
    return sqs_sns(c, pub.tenant_id, pub.body.decode(), attributes, **expected(pub))


@variant("odd_attributes")
def carryover_named_pubsub_attributes(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c)
    attributes = {**pub.attributes, **_odd_values(c, CARRYOVER_HEADER_NAMES, binary=False)}
    return pubsub(c, pub.tenant_id, pub.body, attributes, **expected(pub))


@variant("odd_attributes")
def carryover_named_attributes_on_bad_payload(c: Choices, ctx: Context) -> FuzzPublication:
    """A dead letter too must keep attributes named like its own ``dlq_*`` headers."""
    tenant = c.pick(TENANTS)
    names = ("dlq_reason", "dlq_error", "dlq_stage", "dlq_origin", "dlq_original_sha256", "legacy.source")
    attributes = {**_odd_values(c, names, binary=False), "source": "backend-7", "tenant": GLOBEX}
    payload = c.pick((b"not an event", b'{"eventType":"VOICE_CALL_STARTED"}', b"AAAA"))
    return deliver(c, tenant, payload, attributes, expect_dead_letter=True)


@variant("odd_attributes")
def hundred_large_pubsub_attributes(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c)
    rng = c.rng()
    names = [*CARRYOVER_HEADER_NAMES, *(f"attr-{i:03d}" for i in range(100 - len(CARRYOVER_HEADER_NAMES)))]
    attributes = {name: "".join(rng.choices(string.ascii_letters, k=1024)) for name in names}
    return pubsub(c, pub.tenant_id, pub.body, attributes, **expected(pub))


@variant("odd_attributes")
def empty_and_unicode_attribute_names(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c)
    names = ("", " ", "a b", "a..b", ".dot", "\u00fc", "\u540d\u524d", "\U0001f600", "AWS.x", "goog-x")
    attributes = {**pub.attributes, **{name: c.text(16) or "v" for name in names[: c.integer(1, len(names))]}}
    return deliver(c, pub.tenant_id, pub.body, attributes, **expected(pub))


@variant("odd_attributes")
def sns_and_sqs_attributes_collide(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c)
    sns: dict[str, AttributeValue] = {**pub.attributes, "note": "from sns", "sqs.note": "sns named sqs.note"}
    sqs: dict[str, AttributeValue] = {
        "note": "from sqs",
        "tenantId": "spoofed",
        c.pick(CARRYOVER_HEADER_NAMES): "x",
    }
    return sqs_sns(c, pub.tenant_id, pub.body.decode(), sns, sqs_attributes=sqs, **expected(pub))


def _bad_traceparent(c: Choices) -> str:
    """One of :data:`BAD_TRACEPARENTS`, or a valid traceparent with one character changed."""
    if c.integer(0, 2):
        return c.pick(BAD_TRACEPARENTS)
    good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    at = c.integer(0, len(good) - 1)
    changed = good[:at] + c.pick(("G", "A", "-", " ", "z", "\u00e9")) + good[at + 1 :]
    return changed if changed != good else good[:-1]


@variant("bad_traceparent")
def malformed_traceparent(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c)
    attributes = {**pub.attributes, "traceparent": _bad_traceparent(c)}
    return deliver(c, pub.tenant_id, pub.body, attributes, **expected(pub))


@variant("bad_traceparent")
def random_traceparent(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c)
    attributes: dict[str, AttributeValue] = {**pub.attributes, "traceparent": c.text(60)}
    return deliver(c, pub.tenant_id, pub.body, attributes, **expected(pub))


@variant("bad_traceparent")
def binary_traceparent(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c)
    attributes: dict[str, AttributeValue] = {**pub.attributes, "traceparent": b"\x00" + c.binary(54)}
    return c.pick(SQS_SENDERS)(c, pub.tenant_id, pub.body.decode(), attributes, **expected(pub))


def _sized(c: Choices, ctx: Context, size: int, attribute_count: int) -> FuzzPublication:
    pub = ctx.valid(c, encoding="json")
    payload = pad_json(pub.body, size)
    transport = c.pick(TRANSPORTS)
    rng = c.rng()
    attributes: dict[str, AttributeValue] = dict(pub.attributes)
    for i in range(attribute_count if transport == "pubsub" else min(attribute_count, 10)):
        attributes[f"big-{i:03d}"] = "".join(rng.choices(string.ascii_letters, k=1000))
    over = size > ctx.max_message_bytes
    expect: dict[str, Any] = (
        {"expect_dead_letter": True, "dead_letter_reasons": ("too_large",)} if over else {}
    )
    return deliver(c, pub.tenant_id, payload, attributes, transports=(transport,), **expect)


@variant("size_limits")
def payload_at_the_limit(c: Choices, ctx: Context) -> FuzzPublication:
    return _sized(c, ctx, ctx.max_message_bytes + c.integer(-1, 1), attribute_count=0)


@variant("size_limits")
def payload_at_the_limit_with_large_attributes(c: Choices, ctx: Context) -> FuzzPublication:
    return _sized(c, ctx, ctx.max_message_bytes + c.integer(-1, 1), attribute_count=100)


@variant("size_limits")
def payload_well_under_the_limit(c: Choices, ctx: Context) -> FuzzPublication:
    pub = ctx.valid(c, encoding="json")
    payload = pad_json(pub.body, ctx.max_message_bytes - 16_384)
    return deliver(c, pub.tenant_id, payload, pub.attributes, **expected(pub))


@variant("size_limits")
def multibyte_text_over_the_limit(c: Choices, ctx: Context) -> FuzzPublication:
    tenant = c.pick(TENANTS)
    body = "\u00e9" * (ctx.max_message_bytes // 2 + 1)  # fewer chars than the limit, more bytes
    send = c.pick(SQS_SENDERS)
    return send(c, tenant, body, expect_dead_letter=True, dead_letter_reasons=("too_large",))


@variant("size_limits")
def random_data_over_the_limit(c: Choices, ctx: Context) -> FuzzPublication:
    data = c.rng().randbytes(ctx.max_message_bytes + c.integer(1, 100))
    return pubsub(c, c.pick(TENANTS), data, expect_dead_letter=True, dead_letter_reasons=("too_large",))


@variant("huge_text")
def huge_message_text(c: Choices, ctx: Context) -> FuzzPublication:
    tenant = c.pick(TENANTS)
    rng = c.rng()
    text = plain_text(rng, HUGE_TEXT_CHARS + c.integer(1, 8_000))
    encoding = c.pick(("json", "pb", "encrypted"))
    inner = message_sent(
        c.pick((tenant, None)) if encoding == "encrypted" else tenant,
        f"<messageML>{text}</messageML>",
        rng,
        version=c.pick((1, 2)),
        encoding="pb" if encoding == "pb" else "json",
    )
    payload = seal(inner, tenant=tenant, nonce=rng.randbytes(12)) if encoding == "encrypted" else inner
    return deliver(
        c,
        tenant,
        payload,
        expected_ce_types=(MESSAGE_SENT,),
        full_text=text,
        dead_letter_reasons=("too_large",),
    )


CLASSES: tuple[str, ...] = tuple(VARIANTS)


# ---- what a real API would refuse ----


def _sqs_refusal(message: Mapping[str, Any]) -> str:
    body = str(message["Body"])
    attributes: Mapping[str, Mapping[str, Any]] = message.get("MessageAttributes") or {}
    if not body:
        return "SQS refuses an empty body"
    if not is_text(body) or _SQS_TEXT.search(body):
        return "SQS refuses characters outside the XML range"
    if len(attributes) > 10:
        return "SQS takes at most 10 message attributes"
    size = len(utf8(body))
    for name, attribute in attributes.items():
        value = attribute.get("BinaryValue", attribute.get("StringValue"))
        if not _SQS_ATTRIBUTE_NAME.match(name):
            return f"SQS refuses the attribute name {name!r}"
        if not value:
            return f"SQS refuses the empty attribute value of {name!r}"
        if isinstance(value, str) and (not is_text(value) or _SQS_TEXT.search(value)):
            return f"SQS refuses characters of attribute {name!r}"
        size += len(utf8(name)) + len(value if isinstance(value, bytes) else utf8(value)) + 6
    if size > 1_048_576:
        return "SQS refuses messages over 1 MiB"
    return ""


def _pubsub_refusal(data: bytes | None, attributes: Mapping[str, str]) -> str:
    if not data and not attributes:
        return "Pub/Sub refuses a message without data and attributes"
    if len(attributes) > 100:
        return "Pub/Sub takes at most 100 attributes"
    for name, value in attributes.items():
        if not is_text(name) or not is_text(value):
            return "Pub/Sub attributes must be valid UTF-8"
        if not name or len(utf8(name)) > 256 or name.startswith("goog"):
            return f"Pub/Sub refuses the attribute name {name!r}"
        if len(utf8(value)) > 1024:
            return f"Pub/Sub refuses attribute values over 1024 bytes ({name!r})"
    return ""


def unpublishable_reason(pub: FuzzPublication) -> str:
    """Why a real SQS / Pub/Sub API would refuse ``pub`` ("" when it would take it)."""
    if pub.sqs_message is not None:
        return _sqs_refusal(pub.sqs_message)
    return _pubsub_refusal(pub.data, pub.attributes)


# ---- public entry points ----


def _labelled(cls: str, build: Variant, c: Choices, ctx: Context) -> FuzzPublication:
    pub = build(c, ctx)
    pub = replace(pub, cls=cls, variant=build.__name__)
    return replace(pub, unpublishable=unpublishable_reason(pub))


def corpus(
    seed: int,
    per_class: int,
    *,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    classes: Sequence[str] = CLASSES,
) -> list[FuzzPublication]:
    """``per_class`` publications of every class (variants in turn), shuffled so valid ones interleave.

    The same arguments always give the same publications.
    """
    rng = random.Random(seed)
    choices = RandomChoices(rng)
    ctx = Context(max_message_bytes, traffic_pool(seed))
    out: list[FuzzPublication] = []
    for cls in classes:
        variants = VARIANTS[cls]
        start = rng.randrange(len(variants))
        for i in range(per_class):
            out.append(_labelled(cls, variants[(start + i) % len(variants)], choices, ctx))
    rng.shuffle(out)
    return out


def by_class(publications: Sequence[FuzzPublication]) -> Iterator[tuple[str, list[FuzzPublication]]]:
    """(class, its publications) in :data:`CLASSES` order."""
    for cls in CLASSES:
        members = [p for p in publications if p.cls == cls]
        if members:
            yield cls, members


def publications(
    *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, classes: Sequence[str] = CLASSES
) -> SearchStrategy[FuzzPublication]:
    """Hypothesis strategy: one publication of any of ``classes``."""
    from hypothesis import strategies as st  # noqa: PLC0415 - the corpus must import without hypothesis

    ctx = Context(max_message_bytes, traffic_pool(0))
    pairs = [(cls, build) for cls in classes for build in VARIANTS[cls]]

    @st.composite
    def publication(draw: DrawFn) -> FuzzPublication:
        cls, build = draw(st.sampled_from(pairs))
        return _labelled(cls, build, HypothesisChoices(draw), ctx)

    return publication()
