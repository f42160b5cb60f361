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

from app.cloudevents import dead_letter_headers

Headers = list[tuple[str, bytes]]
TenantSource = Literal["name", "topic_arn", "attribute"]
TENANT_SOURCES: tuple[TenantSource, ...] = ("name", "topic_arn", "attribute")
PROVENANCE_HEADERS = frozenset(
    {"source", "source_id", "source_message_id", "received_at", "tenant", "sns_message_id", "sns_topic_arn"}
)
DLQ_STAGE = "ingest"
REASON_TOO_LARGE = "too_large"
REASON_BAD_ENVELOPE = "sns_envelope_unparseable"
DLQ_SUFFIX = "-dlq"


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


def is_ingested_queue(name: str, prefix: str) -> bool:
    """True for a queue carryover polls: its name starts with the prefix and it is not a ``-dlq`` queue."""
    return name.startswith(prefix) and not name.endswith(DLQ_SUFFIX) and len(name) > len(prefix)


def queue_name_from_url(queue_url: str) -> str:
    """The queue name, i.e. the last path segment of its URL."""
    return queue_url.rstrip("/").rsplit("/", 1)[-1]


def subscription_name_from_path(path: str) -> str:
    """``projects/P/subscriptions/NAME`` -> ``NAME``."""
    return path.rsplit("/", 1)[-1]


def unwrap_sns(body: str) -> SnsNotification | None:
    """The SNS notification in an SQS body, or None when the body is a raw delivery (not an envelope).

    An envelope is a JSON object with ``Type`` and ``TopicArn``. Raises :class:`EnvelopeError` when the
    body is recognisably an SNS envelope but cannot be read.
    """
    if not body.lstrip().startswith("{"):
        return None
    try:
        envelope = json.loads(body)
    except ValueError as exc:
        if '"TopicArn"' in body and '"Type"' in body:
            raise EnvelopeError(f"SNS envelope is not valid JSON: {exc}") from None
        return None
    if not isinstance(envelope, dict) or "TopicArn" not in envelope or "Type" not in envelope:
        return None
    if envelope.get("Type") != "Notification":
        raise EnvelopeError(f"SNS envelope Type is {envelope.get('Type')!r}, not 'Notification'")
    message = envelope.get("Message")
    if not isinstance(message, str):
        raise EnvelopeError("SNS envelope has no string 'Message'")
    return SnsNotification(
        message=message,
        message_id=str(envelope.get("MessageId", "")),
        topic_arn=str(envelope.get("TopicArn", "")),
        attributes=sns_attributes(envelope.get("MessageAttributes") or {}),
    )


def sns_attributes(attributes: Mapping[str, Any]) -> Headers:
    """SNS envelope ``MessageAttributes`` ({name: {Type, Value}}) as headers; Binary values base64-decoded."""
    if not isinstance(attributes, Mapping):
        raise EnvelopeError("SNS MessageAttributes is not an object")
    headers: Headers = []
    for name, attribute in sorted(attributes.items()):
        if not isinstance(attribute, Mapping):
            raise EnvelopeError(f"SNS message attribute {name!r} is not an object")
        value = attribute.get("Value", "")
        if str(attribute.get("Type", "String")).startswith("Binary"):
            try:
                headers.append((name, base64.b64decode(str(value), validate=True)))
            except binascii.Error:
                raise EnvelopeError(f"SNS binary attribute {name!r} is not base64") from None
        else:
            headers.append((name, str(value).encode()))
    return headers


def sqs_attributes(attributes: Mapping[str, Mapping[str, Any]]) -> Headers:
    """SQS ``MessageAttributes`` ({name: {DataType, StringValue|BinaryValue}}) as headers."""
    headers: Headers = []
    for name, attribute in sorted(attributes.items()):
        if str(attribute.get("DataType", "String")).startswith("Binary"):
            raw = attribute.get("BinaryValue", b"")
            headers.append((name, raw if isinstance(raw, bytes) else base64.b64decode(str(raw))))
        else:
            headers.append((name, str(attribute.get("StringValue", "")).encode()))
    return headers


def pubsub_attributes(attributes: Mapping[str, str] | None) -> Headers:
    """Pub/Sub message attributes (string to string) as headers."""
    return [(name, str(value).encode()) for name, value in sorted((attributes or {}).items())]


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


def legacy_headers(attributes: Headers) -> Headers:
    """Legacy attributes under their own names; names colliding with provenance headers get ``legacy.``."""
    return [(f"legacy.{name}" if name in PROVENANCE_HEADERS else name, value) for name, value in attributes]


def record_key(tenant: str | None, source_message_id: str) -> bytes:
    """The staging key: tenant id when known, else the source message id."""
    return (tenant or source_message_id).encode()


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
    """A dead letter for a message that cannot be landed.

    The value is the original bytes; when they exceed ``max_bytes`` (Kafka would refuse them too) they are
    cut to ``max_bytes`` and the headers say so (``dlq_truncated``, ``dlq_original_bytes``) — never silently.
    """
    extra: Headers = []
    value = original
    if len(original) > max_bytes:
        value = original[:max_bytes]
        extra = [("dlq_truncated", b"true"), ("dlq_original_bytes", str(len(original)).encode())]
    return DeadLetter(
        key=record_key(tenant, source_message_id),
        value=value,
        headers=dead_letter_headers(
            headers,
            reason=reason,
            stage=DLQ_STAGE,
            error=error,
            origin=f"{source_id}#{source_message_id}",
        )
        + extra,
        source_message_id=source_message_id,
        reason=reason,
    )


def land_sqs(
    message: Mapping[str, Any], *, queue_url: str, config: LandingConfig, received_at_ms: int
) -> Landing:
    """Land one SQS message (as returned by ReceiveMessage) from ``queue_url``.

    The body is unwrapped when it is an SNS notification envelope and taken as the payload otherwise
    (raw delivery). Attributes come from the envelope's MessageAttributes, else the SQS MessageAttributes.
    """
    message_id = str(message["MessageId"])
    body = str(message.get("Body", ""))
    sqs_attrs = sqs_attributes(message.get("MessageAttributes") or {})
    queue_name = queue_name_from_url(queue_url)
    try:
        notification = unwrap_sns(body)
    except EnvelopeError as exc:
        tenant = derive_tenant(config, source_name=queue_name, topic_arn=None, attributes=sqs_attrs)
        headers = provenance_headers(
            source="sqs",
            source_id=queue_url,
            source_message_id=message_id,
            received_at_ms=received_at_ms,
            tenant=tenant,
        )
        return dead_letter(
            original=body.encode(),
            headers=headers + legacy_headers(sqs_attrs),
            tenant=tenant,
            source_id=queue_url,
            source_message_id=message_id,
            reason=REASON_BAD_ENVELOPE,
            error=str(exc),
            max_bytes=config.max_message_bytes,
        )
    if notification is None:
        payload, attributes, topic_arn, sns_extra = body.encode(), sqs_attrs, None, []
    else:
        payload, attributes, topic_arn = (
            notification.message.encode(),
            notification.attributes,
            notification.topic_arn,
        )
        sns_extra = [
            ("sns_message_id", notification.message_id.encode()),
            ("sns_topic_arn", topic_arn.encode()),
        ]
    tenant = derive_tenant(config, source_name=queue_name, topic_arn=topic_arn, attributes=attributes)
    headers = (
        provenance_headers(
            source="sqs",
            source_id=queue_url,
            source_message_id=message_id,
            received_at_ms=received_at_ms,
            tenant=tenant,
        )
        + sns_extra
        + legacy_headers(attributes)
    )
    if len(payload) > config.max_message_bytes:
        return dead_letter(
            original=payload,
            headers=headers,
            tenant=tenant,
            source_id=queue_url,
            source_message_id=message_id,
            reason=REASON_TOO_LARGE,
            error=f"payload is {len(payload)} bytes, over the {config.max_message_bytes} byte limit",
            max_bytes=config.max_message_bytes,
        )
    return StagingRecord(record_key(tenant, message_id), payload, headers, message_id, tenant)


def land_pubsub(
    *,
    subscription_path: str,
    message_id: str,
    data: bytes | None,
    attributes: Mapping[str, str] | None,
    config: LandingConfig,
    received_at_ms: int,
) -> Landing:
    """Land one pulled Pub/Sub message (data already base64-decoded) from ``subscription_path``."""
    attrs = pubsub_attributes(attributes)
    tenant = derive_tenant(
        config, source_name=subscription_name_from_path(subscription_path), topic_arn=None, attributes=attrs
    )
    headers = provenance_headers(
        source="pubsub",
        source_id=subscription_path,
        source_message_id=message_id,
        received_at_ms=received_at_ms,
        tenant=tenant,
    ) + legacy_headers(attrs)
    payload = data or b""
    if len(payload) > config.max_message_bytes:
        return dead_letter(
            original=payload,
            headers=headers,
            tenant=tenant,
            source_id=subscription_path,
            source_message_id=message_id,
            reason=REASON_TOO_LARGE,
            error=f"payload is {len(payload)} bytes, over the {config.max_message_bytes} byte limit",
            max_bytes=config.max_message_bytes,
        )
    return StagingRecord(record_key(tenant, message_id), payload, headers, message_id, tenant)
