"""What a source message becomes on ``legacy.staging.v1`` (pure: no Kafka, AWS or HTTP imports).

The staging record contract (DESIGN.md §4):

* key: the tenant id when known at the source, else the source message id;
* value: the payload bytes exactly as received — for an SNS notification delivered to SQS without raw
  delivery, the envelope's ``Message`` string as UTF-8; for Pub/Sub, the base64-decoded data;
* headers: ``source`` (sqs|pubsub), ``source_id`` (queue URL / subscription path), ``source_message_id``,
  ``received_at`` (epoch ms, decimal string), ``tenant`` (empty when unknown), then the legacy message
  attributes under their own names. An attribute whose name collides with one of these provenance headers
  is kept as ``legacy.<name>`` instead of being dropped. SNS-enveloped messages also carry
  ``sns_message_id`` and ``sns_topic_arn``.

A message that cannot be landed (payload over the size limit, an SNS envelope that does not parse) becomes
a :class:`DeadLetter`: its original bytes, the same provenance headers, and ``dlq_*`` reason headers.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from app.dead_letters import dead_letter_headers, dead_letter_id, fit_dead_letter, record_bytes

Headers = list[tuple[str, bytes]]
TenantSource = Literal["name", "topic_arn", "attribute"]
TENANT_SOURCES: tuple[TenantSource, ...] = ("name", "topic_arn", "attribute")
PROVENANCE_HEADERS = frozenset(
    {"source", "source_id", "source_message_id", "received_at", "tenant", "sns_message_id", "sns_topic_arn"}
)
DLQ_STAGE = "ingest"
REASON_TOO_LARGE = "too_large"
REASON_BAD_ENVELOPE = "sns_envelope_unparseable"
REASON_INVALID_TEXT = "invalid_text"
REASON_UNLANDABLE = "unlandable"
DLQ_SUFFIX = "-dlq"
LEGACY_PREFIX = "legacy."
SQS_ATTRIBUTE_PREFIX = "sqs."
RESERVED_PREFIXES = ("dlq_", LEGACY_PREFIX, SQS_ATTRIBUTE_PREFIX)


@dataclass(frozen=True)
class LandingConfig:
    """How messages of one source kind are landed: name prefix, where the tenant comes from, size limit."""

    name_prefix: str
    tenant_source: TenantSource = "name"
    tenant_attribute: str = "tenantId"
    max_message_bytes: int = 900_000

    def __post_init__(self) -> None:
        if self.tenant_source not in TENANT_SOURCES:
            raise ValueError(
                f"tenant source {self.tenant_source!r} is not one of {', '.join(TENANT_SOURCES)}"
            )


@dataclass(frozen=True)
class StagingRecord:
    """One record for ``legacy.staging.v1``."""

    key: bytes
    value: bytes
    headers: Headers
    source_message_id: str
    tenant: str | None


@dataclass(frozen=True)
class DeadLetter:
    """A message that cannot be landed: to ``carryover.dlq.v1`` with its original bytes, then acked."""

    key: bytes
    value: bytes
    headers: Headers
    source_message_id: str
    reason: str


Landing = StagingRecord | DeadLetter


@dataclass(frozen=True)
class SnsNotification:
    """The parts of an SNS notification envelope carryover keeps."""

    message: str
    message_id: str
    topic_arn: str
    attributes: Headers


class EnvelopeError(ValueError):
    """The SQS body is an SNS notification envelope carryover cannot read."""


class InvalidText(ValueError):
    """A name or value that must be text is not valid Unicode (a lone surrogate, for example)."""


def is_ingested_queue(name: str, prefix: str) -> bool:
    """True for a queue carryover polls: its name starts with the prefix and it is not a ``-dlq`` queue."""
    return name.startswith(prefix) and not name.endswith(DLQ_SUFFIX) and len(name) > len(prefix)


def queue_name_from_url(queue_url: str) -> str:
    """The queue name, i.e. the last path segment of its URL."""
    return queue_url.rstrip("/").rsplit("/", 1)[-1]


def subscription_name_from_path(path: str) -> str:
    """``projects/P/subscriptions/NAME`` -> ``NAME``."""
    return path.rsplit("/", 1)[-1]


def _text(value: str, what: str) -> bytes:
    """``value`` as UTF-8; :class:`InvalidText` when it holds a lone surrogate (a ``\\udXXX`` JSON escape)."""
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidText(f"{what} is not valid Unicode text (lone surrogate)") from None


def lossless_bytes(value: str) -> bytes:
    """``value`` as bytes even when it is not valid text: lone surrogates kept (``surrogatepass``)."""
    return value.encode("utf-8", "surrogatepass")


def printable(value: str) -> str:
    """``value`` with invalid text escaped (``\\ud800``), for a header name or an error message."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def unwrap_sns(body: str) -> SnsNotification | None:
    """The SNS notification in an SQS body, or None when the body is a raw delivery (not an envelope).

    An envelope is a JSON object with ``Type`` and ``TopicArn``. Raises :class:`EnvelopeError` when the
    body is recognisably an SNS envelope but cannot be read: not JSON (or nested deeper than the JSON
    parser's recursion check allows, ~1 000 levels), not a ``Notification``, fields that are not valid text.
    """
    if not body.lstrip().startswith("{"):
        return None
    looks_like_envelope = '"TopicArn"' in body and '"Type"' in body
    try:
        envelope = json.loads(body)  # the C parser checks its depth: RecursionError past ~1 000 levels
    except RecursionError:
        if looks_like_envelope:
            raise EnvelopeError("SNS envelope is nested too deeply to parse") from None
        return None
    except ValueError as exc:
        if looks_like_envelope:
            raise EnvelopeError(f"SNS envelope is not valid JSON: {printable(str(exc))}") from None
        return None
    if not isinstance(envelope, dict) or "TopicArn" not in envelope or "Type" not in envelope:
        return None
    if envelope.get("Type") != "Notification":
        kind = printable(repr(envelope.get("Type")))[:100]
        raise EnvelopeError(f"SNS envelope Type is {kind}, not 'Notification'")
    message = envelope.get("Message")
    if not isinstance(message, str):
        raise EnvelopeError("SNS envelope has no string 'Message'")
    fields = {name: str(envelope.get(name, "")) for name in ("MessageId", "TopicArn")}
    try:
        _text(message, "SNS envelope field 'Message'")
        for name, value in fields.items():
            _text(value, f"SNS envelope field {name!r}")
    except InvalidText as exc:
        raise EnvelopeError(str(exc)) from None
    return SnsNotification(
        message=message,
        message_id=fields["MessageId"],
        topic_arn=fields["TopicArn"],
        attributes=sns_attributes(envelope.get("MessageAttributes") or {}),
    )


def sns_attributes(attributes: Mapping[str, Any]) -> Headers:
    """SNS envelope ``MessageAttributes`` ({name: {Type, Value}}) as headers; Binary values base64-decoded."""
    if not isinstance(attributes, Mapping):
        raise EnvelopeError("SNS MessageAttributes is not an object")
    headers: Headers = []
    for name, attribute in sorted(attributes.items()):
        shown = printable(str(name))[:200]
        if not isinstance(attribute, Mapping):
            raise EnvelopeError(f"SNS message attribute {shown!r} is not an object")
        try:
            _text(str(name), f"SNS message attribute name {shown!r}")
            value = attribute.get("Value", "")
            if str(attribute.get("Type", "String")).startswith("Binary"):
                try:
                    headers.append((name, base64.b64decode(str(value), validate=True)))
                except binascii.Error:
                    raise EnvelopeError(f"SNS binary attribute {shown!r} is not base64") from None
            else:
                headers.append((name, _text(str(value), f"SNS message attribute {shown!r}")))
        except InvalidText as exc:
            raise EnvelopeError(str(exc)) from None
    return headers


def sqs_attributes(attributes: Mapping[str, Any]) -> Headers:
    """SQS ``MessageAttributes`` ({name: {DataType, StringValue|BinaryValue}}) as headers.

    Raises :class:`InvalidText` for a name or string value that is not valid text.
    """
    headers: Headers = []
    if not isinstance(attributes, Mapping):
        raise InvalidText("SQS MessageAttributes is not an object")
    for name, attribute in sorted(attributes.items(), key=lambda item: str(item[0])):
        shown = printable(str(name))[:200]
        _text(str(name), f"SQS message attribute name {shown!r}")
        attribute = attribute if isinstance(attribute, Mapping) else {"StringValue": str(attribute)}
        if str(attribute.get("DataType", "String")).startswith("Binary"):
            raw = attribute.get("BinaryValue", b"")
            if isinstance(raw, bytes | bytearray):
                headers.append((str(name), bytes(raw)))
            else:
                try:
                    headers.append((str(name), base64.b64decode(str(raw), validate=True)))
                except binascii.Error:
                    raise InvalidText(f"SQS binary attribute {shown!r} is not base64") from None
        else:
            value = str(attribute.get("StringValue", ""))
            headers.append((str(name), _text(value, f"SQS message attribute {shown!r}")))
    return headers


def escaped_sqs_attributes(attributes: Any) -> Headers:
    """SQS attributes for a dead letter, whatever they hold: names with invalid text escaped, values kept."""
    if not isinstance(attributes, Mapping):
        return []
    headers: Headers = []
    for name, attribute in sorted(attributes.items(), key=lambda item: str(item[0])):
        attribute = attribute if isinstance(attribute, Mapping) else {"StringValue": str(attribute)}
        raw = attribute.get("BinaryValue", attribute.get("StringValue", ""))
        value = bytes(raw) if isinstance(raw, bytes | bytearray) else lossless_bytes(str(raw))
        headers.append((printable(str(name)), value))
    return headers


def pubsub_attributes(attributes: Mapping[str, str] | None) -> Headers:
    """Pub/Sub message attributes (string to string) as headers.

    Raises :class:`InvalidText` for a name or value that is not valid text.
    """
    if attributes is not None and not isinstance(attributes, Mapping):
        raise InvalidText("Pub/Sub attributes are not an object")
    headers: Headers = []
    for name, value in sorted((attributes or {}).items(), key=lambda item: str(item[0])):
        shown = printable(str(name))[:200]
        _text(str(name), f"Pub/Sub attribute name {shown!r}")
        headers.append((str(name), _text(str(value), f"Pub/Sub attribute {shown!r}")))
    return headers


def escaped_pubsub_attributes(attributes: Any) -> Headers:
    """Pub/Sub attributes for a dead letter, whatever they hold: names escaped, values kept."""
    if not isinstance(attributes, Mapping):
        return []
    return [
        (printable(str(name)), lossless_bytes(str(value)))
        for name, value in sorted(attributes.items(), key=lambda item: str(item[0]))
    ]


def strip_prefix(name: str, prefix: str) -> str | None:
    """``name`` without ``prefix``; None when it does not start with it or nothing is left."""
    if name.startswith(prefix) and len(name) > len(prefix):
        return name[len(prefix) :]
    return None


def derive_tenant(
    config: LandingConfig, *, source_name: str, topic_arn: str | None, attributes: Headers
) -> str | None:
    """The tenant of a message, from where ``config.tenant_source`` says; None when it is not there."""
    if config.tenant_source == "name":
        return strip_prefix(source_name, config.name_prefix)
    if config.tenant_source == "topic_arn":
        return strip_prefix(topic_arn.rsplit(":", 1)[-1], config.name_prefix) if topic_arn else None
    for name, value in attributes:
        if name == config.tenant_attribute:
            tenant = value.decode(errors="replace").strip()
            return tenant or None
    return None


def provenance_headers(
    *, source: str, source_id: str, source_message_id: str, received_at_ms: int, tenant: str | None
) -> Headers:
    """The headers every staging record (and every ingest dead letter) starts with."""
    return [
        ("source", source.encode()),
        ("source_id", source_id.encode()),
        ("source_message_id", source_message_id.encode()),
        ("received_at", str(received_at_ms).encode()),
        ("tenant", (tenant or "").encode()),
    ]


def attribute_header(name: str) -> str:
    """The staging header a source attribute is written under.

    carryover's own headers (:data:`PROVENANCE_HEADERS`, and names starting with ``dlq_``, ``legacy.`` or
    ``sqs.``) are reserved: an attribute named like one is written as ``legacy.<name>``. The mapping is
    one to one (``legacy.x`` itself becomes ``legacy.legacy.x``), so no attribute is overwritten or lost.
    """
    if name in PROVENANCE_HEADERS or name.startswith(RESERVED_PREFIXES):
        return LEGACY_PREFIX + name
    return name


def legacy_headers(attributes: Headers, *, prefix: str = "") -> Headers:
    """Source attributes as staging headers (:func:`attribute_header`), optionally under ``prefix``."""
    return [(prefix + name if prefix else attribute_header(name), value) for name, value in attributes]


def record_key(tenant: str | None, source_message_id: str) -> bytes:
    """The staging key: tenant id when known, else the source message id."""
    return (tenant or source_message_id).encode("utf-8", "backslashreplace")


def dead_letter(
    *,
    original: bytes,
    headers: Headers,
    tenant: str | None,
    source_id: str,
    source_message_id: str,
    reason: str,
    error: str,
    max_bytes: int,
) -> DeadLetter:
    """A dead letter for a message that cannot be landed: the original bytes, the provenance and attribute
    headers, and the reason headers; within ``max_bytes`` plus the reason headers' bound
    (:func:`app.dead_letters.fit_dead_letter`: an original too large for Kafka keeps its first bytes and
    says so with its size and SHA-256 — never silently). ``dlq_id`` is derived from the source message's
    identity (tenant, source, message id) and the reason: a message redelivered by its source after a crash
    gives a dead letter with the same id.
    """
    source_id, source_message_id = printable(source_id), printable(source_message_id)
    letter_id = dead_letter_id(DLQ_STAGE, tenant or "", source_id, source_message_id, reason)
    value, letter_headers = fit_dead_letter(
        original,
        dead_letter_headers(
            headers,
            reason=reason,
            stage=DLQ_STAGE,
            error=error,
            origin=f"{source_id}#{source_message_id}",
            letter_id=letter_id,
        ),
        max_bytes,
    )
    return DeadLetter(
        key=record_key(tenant, source_message_id),
        value=value,
        headers=letter_headers,
        source_message_id=source_message_id,
        reason=reason,
    )


def unwritable(record: StagingRecord, exc: BaseException, max_bytes: int = 900_000) -> DeadLetter:
    """The dead letter of a staging record the Kafka producer refused as such (never expected: landing
    bounds sizes and checks text; this is the last guard so that a record is never redelivered forever)."""
    headers = dict(record.headers)
    return dead_letter(
        original=record.value,
        headers=[(printable(name), value) for name, value in record.headers],
        tenant=record.tenant,
        source_id=headers.get("source_id", b"").decode("utf-8", "replace"),
        source_message_id=record.source_message_id,
        reason=REASON_UNLANDABLE,
        error=f"Kafka refused the staging record ({type(exc).__name__}: {printable(str(exc))[:300]})",
        max_bytes=max_bytes,
    )


@dataclass(frozen=True)
class _Origin:
    """Where one message came from: what its provenance headers and its dead letter are made of."""

    source: str
    source_id: str
    message_id: str
    received_at_ms: int
    max_bytes: int

    def headers(self, tenant: str | None) -> Headers:
        return provenance_headers(
            source=self.source,
            source_id=self.source_id,
            source_message_id=self.message_id,
            received_at_ms=self.received_at_ms,
            tenant=tenant,
        )

    def letter(
        self, original: bytes, attributes: Headers, *, tenant: str | None, reason: str, error: str
    ) -> DeadLetter:
        return dead_letter(
            original=original,
            headers=self.headers(tenant) + legacy_headers(attributes),
            tenant=tenant,
            source_id=self.source_id,
            source_message_id=self.message_id,
            reason=reason,
            error=error,
            max_bytes=self.max_bytes,
        )

    def staged(self, payload: bytes, headers: Headers, tenant: str | None) -> Landing:
        """The staging record, or a ``too_large`` dead letter when payload and headers are over the limit."""
        size = record_bytes(payload, headers)
        if size > self.max_bytes:
            return dead_letter(
                original=payload,
                headers=headers,
                tenant=tenant,
                source_id=self.source_id,
                source_message_id=self.message_id,
                reason=REASON_TOO_LARGE,
                error=f"payload and attributes are {size} bytes, over the {self.max_bytes} byte limit "
                "(CARRYOVER_MAX_MESSAGE_BYTES)",
                max_bytes=self.max_bytes,
            )
        return StagingRecord(record_key(tenant, self.message_id), payload, headers, self.message_id, tenant)


def _unlandable(exc: BaseException) -> tuple[str, str]:
    """(reason, error) of a message that could not be landed at all."""
    if isinstance(exc, InvalidText | EnvelopeError):
        return REASON_INVALID_TEXT if isinstance(exc, InvalidText) else REASON_BAD_ENVELOPE, printable(
            str(exc)
        )
    return (
        REASON_UNLANDABLE,
        f"could not be landed ({type(exc).__name__}); keep the dead letter and report it",
    )


def land_sqs(
    message: Mapping[str, Any], *, queue_url: str, config: LandingConfig, received_at_ms: int
) -> Landing:
    """Land one SQS message (as returned by ReceiveMessage) from ``queue_url``. Never raises.

    The body is unwrapped when it is an SNS notification envelope and taken as the payload otherwise
    (raw delivery). Attributes come from the envelope's MessageAttributes; the SQS message's own
    attributes are kept beside them as ``sqs.<name>``. A message that cannot be landed is a dead letter.
    """
    message_id = printable(str(message.get("MessageId", "")))
    origin = _Origin("sqs", queue_url, message_id, received_at_ms, config.max_message_bytes)
    try:
        return _land_sqs(message, origin, config)
    except Exception as exc:  # noqa: BLE001 - whatever the message holds, it becomes one dead letter
        reason, error = _unlandable(exc)
        body = lossless_bytes(str(message.get("Body", "")))
        attributes = escaped_sqs_attributes(message.get("MessageAttributes"))
        return origin.letter(body, attributes, tenant=None, reason=reason, error=error)


def _land_sqs(message: Mapping[str, Any], origin: _Origin, config: LandingConfig) -> Landing:
    _text(str(message["MessageId"]), "SQS MessageId")
    body = str(message.get("Body", ""))
    _text(body, "SQS message body")
    sqs_attrs = sqs_attributes(message.get("MessageAttributes") or {})
    queue_name = queue_name_from_url(origin.source_id)
    try:
        notification = unwrap_sns(body)
    except EnvelopeError as exc:
        tenant = derive_tenant(config, source_name=queue_name, topic_arn=None, attributes=sqs_attrs)
        return origin.letter(
            body.encode(), sqs_attrs, tenant=tenant, reason=REASON_BAD_ENVELOPE, error=str(exc)
        )
    if notification is None:
        payload, attributes, topic_arn = body.encode(), sqs_attrs, None
        sns: Headers = []
        own: Headers = []
    else:
        payload, attributes, topic_arn = (
            notification.message.encode(),
            notification.attributes,
            notification.topic_arn,
        )
        sns = [("sns_message_id", notification.message_id.encode()), ("sns_topic_arn", topic_arn.encode())]
        own = legacy_headers(sqs_attrs, prefix=SQS_ATTRIBUTE_PREFIX)
    tenant = derive_tenant(config, source_name=queue_name, topic_arn=topic_arn, attributes=attributes)
    return origin.staged(payload, origin.headers(tenant) + sns + legacy_headers(attributes) + own, tenant)


def land_pubsub(
    *,
    subscription_path: str,
    message_id: str,
    data: bytes | None,
    attributes: Mapping[str, str] | None,
    config: LandingConfig,
    received_at_ms: int,
) -> Landing:
    """Land one pulled Pub/Sub message (data already base64-decoded) from ``subscription_path``.

    Never raises: a message that cannot be landed is a dead letter.
    """
    payload = bytes(data or b"")
    origin = _Origin(
        "pubsub", subscription_path, printable(str(message_id)), received_at_ms, config.max_message_bytes
    )
    try:
        _text(message_id, "Pub/Sub message id")
        attrs = pubsub_attributes(attributes)
    except Exception as exc:  # noqa: BLE001 - whatever the message holds, it becomes one dead letter
        reason, error = _unlandable(exc)
        return origin.letter(
            payload, escaped_pubsub_attributes(attributes), tenant=None, reason=reason, error=error
        )
    tenant = derive_tenant(
        config, source_name=subscription_name_from_path(subscription_path), topic_arn=None, attributes=attrs
    )
    return origin.staged(payload, origin.headers(tenant) + legacy_headers(attrs), tenant)
