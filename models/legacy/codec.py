"""Decoding (and, for the traffic simulator, encoding) of legacy payloads; pure.

Three encodings reach carryover:

* plain JSON, v1 or v2 style (see :mod:`models.legacy.spec`);
* base64 (standard alphabet) of a binary ``legacy.pod.v1.PodEvent``;
* JSON ``{"tenantId": ..., "keyId": ..., "ciphertext": <base64>}`` whose ciphertext (AES-256-GCM with the
  tenant key, see :mod:`app.crypto.aead`) decrypts to one of the other two.

:func:`decode_payload` tells them apart; the caller decrypts an :class:`EncryptedPayload` and passes the
plaintext to :func:`decode_plaintext`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf.message import DecodeError

from models.legacy import values
from models.legacy.legacy_event_pb2 import PodEvent, RoomMember
from models.legacy.spec import PROTO_FIELDS, SPECS, TYPES, AttrValue, EventSpec, FieldSpec, Member

MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
JSON = "json"
PROTOBUF = "protobuf"


class LegacyFormatError(ValueError):
    """A payload that cannot be decoded. ``reason`` is a dead-letter slug (malformed, unknown_type,
    unsupported_version); the message says what is wrong and never quotes secret material."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _malformed(message: str) -> LegacyFormatError:
    return LegacyFormatError("malformed", message)


@dataclass(frozen=True)
class LegacyEvent:
    """One decoded legacy event, values in canonical form (see :mod:`models.legacy.values`).

    ``tenant_id`` and ``occurred_ms`` are None when the payload did not carry them.
    """

    type: str
    version: int
    encoding: str
    tenant_id: str | None
    occurred_ms: int | None
    attrs: Mapping[str, AttrValue] = field(default_factory=dict)

    def text(self, name: str, default: str | None = None) -> str:
        """A string attribute; ``default`` when absent, or LegacyFormatError(malformed) without one."""
        value = self.attrs.get(name)
        if value is None:
            if default is None:
                raise _malformed(f"{self.type} v{self.version} needs {name}")
            return default
        if not isinstance(value, str):
            raise _malformed(f"{self.type} v{self.version}: {name} is not a string")
        return value

    def flag(self, name: str) -> bool:
        """A boolean attribute, False when absent."""
        return self.attrs.get(name) is True

    def members(self) -> tuple[Member, ...]:
        """The listed room members (empty when absent)."""
        value = self.attrs.get("members", ())
        return value if isinstance(value, tuple) else ()


@dataclass(frozen=True)
class EncryptedPayload:
    """The encrypted wrapper: which tenant key encrypted the inner payload, and the ciphertext."""

    tenant_id: str | None
    key_id: str
    ciphertext: bytes


@dataclass(frozen=True)
class _FieldPlan:
    """A :class:`FieldSpec` made ready to decode with: its path split once, its kind's decoder looked up."""

    attr: str
    path: str
    parts: tuple[str, ...]
    decode: Callable[[object], AttrValue]
    required: bool

    @classmethod
    def of(cls, spec: FieldSpec, path: str | None = None) -> _FieldPlan:
        """The plan of ``spec``, optionally under another path (the protobuf fields use ``v``)."""
        path = spec.path if path is None else path
        return cls(spec.attr, path, tuple(path.split(".")), spec.kind.value[0], spec.required)


@dataclass(frozen=True)
class _SpecPlan:
    """Every field of one (type, version) as :class:`_FieldPlan` s, with the JSON style's tenant and time."""

    tenant: _FieldPlan
    time: _FieldPlan
    fields: tuple[_FieldPlan, ...]
    proto_fields: tuple[tuple[_FieldPlan, str], ...]
    """(plan under the path ``v``, PodEvent field name) of each field, for the binary encoding."""

    @classmethod
    def of(cls, spec: EventSpec) -> _SpecPlan:
        """The plan of ``spec``."""
        return cls(
            _FieldPlan.of(spec.style.tenant),
            _FieldPlan.of(spec.time_field),
            tuple(_FieldPlan.of(f) for f in spec.fields),
            tuple(
                (
                    _FieldPlan.of(FieldSpec(f.attr, "v", PROTO_FIELDS[f.attr][1], f.required)),
                    PROTO_FIELDS[f.attr][0],
                )
                for f in spec.fields
            ),
        )


_PLANS: dict[tuple[str, int], _SpecPlan] = {key: _SpecPlan.of(spec) for key, spec in SPECS.items()}


def _lookup(document: Mapping[str, Any], parts: tuple[str, ...]) -> Any:
    node: Any = document
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _decode_field(raw: Any, plan: _FieldPlan, what: str) -> AttrValue | None:
    """The canonical value of one field's wire value ``raw`` (None: absent)."""
    if raw is None:
        if plan.required:
            raise _malformed(f"{what} has no {plan.path}")
        return None
    try:
        return plan.decode(raw)
    except values.ValueFormatError as exc:
        raise _malformed(f"{what} field {plan.path}: {exc}") from None


def _spec_for(event_type: object, version: object) -> EventSpec:
    if not isinstance(event_type, str) or not event_type:
        raise _malformed("no event type (expected 'type' or 'eventType')")
    if event_type not in TYPES:
        raise LegacyFormatError("unknown_type", f"unknown legacy event type {event_type[:80]!r}")
    if isinstance(version, bool) or not isinstance(version, int):
        raise _malformed(f"{event_type}: version is not an integer")
    spec = SPECS.get((event_type, version))
    if spec is None:
        known = ", ".join(str(ver) for t, ver in sorted(SPECS) if t == event_type)
        raise LegacyFormatError(
            "unsupported_version", f"{event_type} version {version} is not supported (known: {known})"
        )
    return spec


def _decode_json_event(document: dict[str, Any]) -> LegacyEvent:
    event_type = document.get("eventType", document.get("type"))
    version = document.get("schemaVersion", document.get("version", 1))
    spec = _spec_for(event_type, version)
    plan = _PLANS[(spec.type, spec.version)]
    what = f"{spec.type} v{spec.version}"
    tenant = _decode_field(_lookup(document, plan.tenant.parts), plan.tenant, what)
    occurred = _decode_field(_lookup(document, plan.time.parts), plan.time, what)
    attrs: dict[str, AttrValue] = {}
    for field_plan in plan.fields:  # _decode_field, inlined: this loop runs for every field of every event
        raw = _lookup(document, field_plan.parts)
        if raw is None:
            if field_plan.required:
                raise _malformed(f"{what} has no {field_plan.path}")
            continue
        try:
            value = field_plan.decode(raw)
        except values.ValueFormatError as exc:
            raise _malformed(f"{what} field {field_plan.path}: {exc}") from None
        if value is not None:
            attrs[field_plan.attr] = value
    return LegacyEvent(
        spec.type,
        spec.version,
        JSON,
        tenant if isinstance(tenant, str) and tenant else None,
        occurred if isinstance(occurred, int) else None,
        attrs,
    )


def _proto_value(event: PodEvent, name: str) -> object:
    if name == "members":
        return [{"user_id": m.user_id, "role": m.role or "MEMBER"} for m in event.members] or None
    value = getattr(event, name)
    return value if value else None  # proto3: the default value means "not set"


def _decode_protobuf_event(event: PodEvent) -> LegacyEvent:
    spec = _spec_for(event.event_type, event.version or 1)
    what = f"{spec.type} v{spec.version} (protobuf)"
    attrs: dict[str, AttrValue] = {}
    for field_plan, proto_name in _PLANS[(spec.type, spec.version)].proto_fields:
        value = _decode_field(_proto_value(event, proto_name), field_plan, what)
        if value is not None:
            attrs[field_plan.attr] = value
    occurred = None
    if event.timestamp:
        try:
            occurred = values.time_from_millis(event.timestamp)
        except values.ValueFormatError as exc:
            raise _malformed(f"{what} timestamp: {exc}") from None
    elif spec.time_required:
        raise _malformed(f"{what} has no timestamp")
    return LegacyEvent(spec.type, spec.version, PROTOBUF, event.pod_id or None, occurred, attrs)


_FAST_JSON_MAX_OPENERS = 64
"""More ``{`` / ``[`` than this and json reads the payload (it alone decides when nesting is too deep)."""


def _holds_float(node: Any) -> bool:
    """True when a parsed JSON object or array holds a float at any depth."""
    children = node.values() if isinstance(node, dict) else node
    for child in children:
        if isinstance(child, float) or (isinstance(child, dict | list) and _holds_float(child)):
            return True
    return False


def _load_json(payload: bytes) -> Any:
    """The JSON document in ``payload``, exactly as ``json.loads`` of its UTF-8 text reads it.

    orjson reads the common payload; json reads anything orjson refuses (and decides what is malformed),
    anything deeply nested, and anything holding a float (orjson reads an integer beyond 64 bits as one; a
    legacy event holds no float).
    """
    if payload.count(b"{") + payload.count(b"[") <= _FAST_JSON_MAX_OPENERS:
        try:
            document = orjson.loads(payload)
        except orjson.JSONDecodeError:
            pass  # json gives the verdict (and the error name) it always gave
        else:
            if not (
                isinstance(document, float) or (isinstance(document, dict | list) and _holds_float(document))
            ):
                return document
    try:
        return json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _malformed(f"not valid JSON ({type(exc).__name__})") from None


def _decode_base64_protobuf(payload: bytes) -> LegacyEvent:
    try:
        raw = base64.b64decode(payload.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise _malformed("neither JSON nor base64 protobuf") from None
    try:
        event = PodEvent.FromString(raw)
    except (DecodeError, RecursionError, ValueError):
        raise _malformed("base64 content is not a legacy PodEvent protobuf") from None
    if not event.event_type:
        raise _malformed("base64 content is not a legacy PodEvent protobuf (no event_type)")
    return _decode_protobuf_event(event)


def decode_plaintext(payload: bytes) -> LegacyEvent:
    """A plain JSON or base64-protobuf legacy event (no encryption wrapper); raises LegacyFormatError."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise _malformed(f"payload larger than {MAX_PAYLOAD_BYTES} bytes")
    if not payload.strip():
        raise _malformed("empty payload")
    if payload.lstrip()[:1] == b"{":
        document = _load_json(payload)
        if not isinstance(document, dict):
            raise _malformed("JSON payload is not an object")
        if "ciphertext" in document:
            raise _malformed("encrypted payload nested inside an encrypted payload")
        return _decode_json_event(document)
    return _decode_base64_protobuf(payload)


def decode_payload(payload: bytes) -> LegacyEvent | EncryptedPayload:
    """Any legacy payload: the event, or the encryption wrapper to decrypt first; raises LegacyFormatError."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise _malformed(f"payload larger than {MAX_PAYLOAD_BYTES} bytes")
    if payload.lstrip()[:1] == b"{":
        document = _load_json(payload)
        if isinstance(document, dict) and "ciphertext" in document:
            return _decode_wrapper(document)
        if not isinstance(document, dict):  # what decode_plaintext says, without parsing it again
            raise _malformed("JSON payload is not an object")
        return _decode_json_event(document)
    return decode_plaintext(payload)


def _decode_wrapper(document: dict[str, Any]) -> EncryptedPayload:
    tenant, key_id, ciphertext = document.get("tenantId"), document.get("keyId"), document.get("ciphertext")
    if tenant is not None and (not isinstance(tenant, str)):
        raise _malformed("encrypted payload: tenantId is not a string")
    if not isinstance(key_id, str) or not key_id:
        raise _malformed("encrypted payload without keyId")
    if not isinstance(ciphertext, str):
        raise _malformed("encrypted payload: ciphertext is not a base64 string")
    try:
        blob = base64.b64decode(ciphertext, validate=True)
    except (binascii.Error, ValueError):
        raise _malformed("encrypted payload: ciphertext is not valid base64") from None
    return EncryptedPayload(tenant or None, key_id, blob)


# ---- encoding (what the legacy backend publishes; used by the traffic simulator and tests) ----


def _place(document: dict[str, Any], path: str, value: Any) -> None:
    node = document
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def encode_json(
    event_type: str,
    version: int,
    attrs: Mapping[str, AttrValue],
    *,
    tenant_id: str | None,
    occurred_ms: int | None,
) -> bytes:
    """The JSON document the legacy backend publishes for this event (attributes in canonical form)."""
    spec = SPECS[(event_type, version)]
    document: dict[str, Any] = {spec.style.type_key: event_type, spec.style.version_key: version}
    if tenant_id is not None:
        _place(document, spec.style.tenant.path, tenant_id)
    if occurred_ms is not None:
        _place(document, spec.style.time.path, spec.style.time.kind.encode(occurred_ms))
    for field_spec in spec.fields:
        if field_spec.attr in attrs:
            _place(document, field_spec.path, field_spec.kind.encode(attrs[field_spec.attr]))
    return json.dumps(document, separators=(",", ":")).encode()


def encode_protobuf(
    event_type: str,
    version: int,
    attrs: Mapping[str, AttrValue],
    *,
    tenant_id: str | None,
    occurred_ms: int | None,
) -> bytes:
    """base64 of the binary PodEvent the legacy backend publishes for this event."""
    spec = SPECS[(event_type, version)]
    event = PodEvent(
        event_type=event_type, version=version, pod_id=tenant_id or "", timestamp=occurred_ms or 0
    )
    for field_spec in spec.fields:
        if field_spec.attr not in attrs:
            continue
        proto_name, kind = PROTO_FIELDS[field_spec.attr]
        wire = kind.encode(attrs[field_spec.attr])
        if proto_name == "members":
            event.members.extend(RoomMember(user_id=m["user_id"], role=m["role"]) for m in wire)
        else:
            setattr(event, proto_name, wire)
    return base64.b64encode(event.SerializeToString())


def encode_encrypted(tenant_id: str | None, key_id: str, ciphertext: bytes) -> bytes:
    """The encryption wrapper around an already encrypted inner payload."""
    document: dict[str, Any] = {"keyId": key_id, "ciphertext": base64.b64encode(ciphertext).decode()}
    if tenant_id is not None:
        document = {"tenantId": tenant_id, **document}
    return json.dumps(document, separators=(",", ":")).encode()
