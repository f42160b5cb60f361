"""The catalog's metadata (catalog/topics.yaml, catalog/events.yaml) and its generated classes (pure).

``load_catalog()`` reads the YAML into ``Catalog``; ``envelope_class(topic)`` gives the generated envelope
class of a canonical topic, ``inner_event(envelope)`` the event set in its oneof, ``wrap(event)`` the
envelope (and topic) an event travels in.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import yaml
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from app.catalog.paths import CATALOG_DIR, GENERATED_PACKAGE

if TYPE_CHECKING:
    from google._upb._message import Descriptor as _UpbDescriptor
    from google._upb._message import FileDescriptor as _UpbFileDescriptor
    from google.protobuf.descriptor import FileDescriptor

    MessageDescriptor: TypeAlias = Descriptor | _UpbDescriptor
    """A message descriptor from either protobuf backend (what ``Message.DESCRIPTOR`` is typed as)."""
    AnyFileDescriptor: TypeAlias = FileDescriptor | _UpbFileDescriptor
    """A file descriptor from either protobuf backend."""

ENVELOPE_ONEOF = "event"


class CatalogError(ValueError):
    """The catalog metadata is malformed or refers to something that does not exist."""


@dataclass(frozen=True)
class HeaderSpec:
    """One Kafka record header every canonical record carries (or may carry)."""

    name: str
    required: bool
    description: str


@dataclass(frozen=True)
class TopicSpec:
    """One Kafka topic as declared in catalog/topics.yaml."""

    name: str
    key: str
    partitions: int
    compacted: bool
    retention_ms: int | None
    envelope: str | None
    owners: tuple[str, ...]
    description: str = ""

    @property
    def canonical(self) -> bool:
        """True for topics whose values are Confluent-framed protobuf envelopes."""
        return self.envelope is not None

    def configs(self) -> dict[str, str]:
        """Kafka topic configs this topic is created with."""
        if self.compacted:
            return {"cleanup.policy": "compact"}
        configs = {"cleanup.policy": "delete"}
        if self.retention_ms is not None:
            configs["retention.ms"] = str(self.retention_ms)
        return configs


@dataclass(frozen=True)
class CatalogEvent:
    """One canonical event type as declared in catalog/events.yaml."""

    type: str
    topic: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    sensitive_fields: tuple[str, ...]

    @property
    def name(self) -> str:
        """Short message name, e.g. MessageSent."""
        return self.type.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Catalog:
    """Topics, events and headers of the catalog, keyed by topic name / event full name."""

    topics: dict[str, TopicSpec]
    events: dict[str, CatalogEvent]
    headers: tuple[HeaderSpec, ...] = field(default=())
    root: Path = CATALOG_DIR

    def canonical_topics(self) -> list[TopicSpec]:
        """Topics carrying protobuf envelopes, in declaration order."""
        return [t for t in self.topics.values() if t.envelope is not None]

    def events_of(self, topic: str) -> list[CatalogEvent]:
        """Events declared on ``topic``, in declaration order."""
        return [e for e in self.events.values() if e.topic == topic]

    def envelope_class(self, topic: str) -> type[Message]:
        """Generated envelope class of a canonical topic; CatalogError for unknown or non-canonical topics."""
        spec = self.topics.get(topic)
        if spec is None:
            raise CatalogError(f"unknown topic {topic!r}; known: {', '.join(sorted(self.topics))}")
        if spec.envelope is None:
            raise CatalogError(f"topic {topic!r} carries no protobuf envelope (it is not canonical)")
        return message_class(spec.envelope)

    def topic_of(self, event_type: str) -> TopicSpec:
        """The topic an event type is published on."""
        spec = self.events.get(event_type)
        if spec is None:
            raise CatalogError(f"event type {event_type!r} is not in catalog/events.yaml")
        return self.topics[spec.topic]

    def wrap(self, event: Message) -> tuple[str, Message]:
        """(topic, envelope) for an inner event: the envelope of its topic with the event set in the oneof."""
        topic = self.topic_of(event.DESCRIPTOR.full_name)
        envelope = self.envelope_class(topic.name)()
        member = oneof_field_for(envelope.DESCRIPTOR, event.DESCRIPTOR.full_name)
        cast(Message, getattr(envelope, member)).CopyFrom(event)
        return topic.name, envelope


def _snake(name: str) -> str:
    """CamelCase -> snake_case, as the catalog names its files."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@functools.cache
def message_class(full_name: str) -> type[Message]:
    """Generated class of a catalog message by protobuf full name, e.g. carryover.identity.v1.UserCreated."""
    package, _, name = full_name.rpartition(".")
    module_name = f"{GENERATED_PACKAGE}.{package}.{_snake(name)}_pb2"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise CatalogError(
            f"no generated module {module_name} for {full_name}: is it in catalog/proto? "
            "run `python -m app.catalog.codegen`"
        ) from exc
    cls = getattr(module, name, None)
    if not (isinstance(cls, type) and issubclass(cls, Message)):
        raise CatalogError(f"{module_name} defines no message {name}")
    return cls


def oneof_field_for(envelope: MessageDescriptor, event_type: str) -> str:
    """Name of the envelope's oneof member whose type is ``event_type``."""
    for fd in envelope.oneofs_by_name[ENVELOPE_ONEOF].fields:
        if fd.message_type is not None and fd.message_type.full_name == event_type:
            return str(fd.name)
    raise CatalogError(f"envelope {envelope.full_name} has no oneof member of type {event_type}")


def inner_event(envelope: Message) -> Message:
    """The event set in an envelope's ``event`` oneof; CatalogError when none is set."""
    member = envelope.WhichOneof(ENVELOPE_ONEOF)
    if member is None:
        raise CatalogError(f"{envelope.DESCRIPTOR.full_name} has no event set")
    return cast(Message, getattr(envelope, member))


def _require(entry: Mapping[str, Any], key: str, where: str) -> Any:
    """entry[key] or a CatalogError naming the entry."""
    if key not in entry:
        raise CatalogError(f"{where}: missing required key {key!r}")
    return entry[key]


def _strings(value: Any, where: str) -> tuple[str, ...]:
    """A YAML list of strings as a tuple."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CatalogError(f"{where}: expected a list of strings, got {value!r}")
    return tuple(value)


def _load_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from ``path``."""
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise CatalogError(f"{path}: not found") from exc
    if not isinstance(data, dict):
        raise CatalogError(f"{path}: expected a mapping at the top level")
    return data


def parse_topic(entry: Mapping[str, Any], where: str) -> TopicSpec:
    """One topics.yaml entry as a TopicSpec."""
    name = str(_require(entry, "name", where))
    where = f"{where} ({name})"
    policy = entry.get("cleanup_policy", "delete")
    if policy not in ("delete", "compact"):
        raise CatalogError(f"{where}: cleanup_policy must be delete or compact, got {policy!r}")
    retention = entry.get("retention_ms")
    if policy == "delete" and retention is None:
        raise CatalogError(f"{where}: set retention_ms (-1 keeps forever) or cleanup_policy: compact")
    partitions = _require(entry, "partitions", where)
    if not isinstance(partitions, int) or partitions < 1:
        raise CatalogError(f"{where}: partitions must be a positive integer")
    envelope = entry.get("envelope")
    if envelope is None and "value" not in entry:
        raise CatalogError(f"{where}: give either envelope (protobuf full name) or value (description)")
    return TopicSpec(
        name=name,
        key=str(_require(entry, "key", where)),
        partitions=partitions,
        compacted=policy == "compact",
        retention_ms=int(retention) if retention is not None else None,
        envelope=str(envelope) if envelope is not None else None,
        owners=_strings(_require(entry, "owners", where), where),
        description=str(entry.get("description") or entry.get("value") or ""),
    )


def parse_event(entry: Mapping[str, Any], where: str) -> CatalogEvent:
    """One events.yaml entry as an CatalogEvent."""
    type_ = str(_require(entry, "type", where))
    where = f"{where} ({type_})"
    return CatalogEvent(
        type=type_,
        topic=str(_require(entry, "topic", where)),
        producers=_strings(_require(entry, "producers", where), where),
        consumers=_strings(_require(entry, "consumers", where), where),
        sensitive_fields=_strings(entry.get("sensitive_fields"), where),
    )


def load_catalog(root: Path = CATALOG_DIR) -> Catalog:
    """Reads topics.yaml and events.yaml under ``root``; CatalogError on malformed or dangling entries."""
    topics_doc = _load_yaml(root / "topics.yaml")
    events_doc = _load_yaml(root / "events.yaml")
    topics: dict[str, TopicSpec] = {}
    for i, entry in enumerate(topics_doc.get("topics") or []):
        spec = parse_topic(entry, f"{root / 'topics.yaml'}: topics[{i}]")
        if spec.name in topics:
            raise CatalogError(f"{root / 'topics.yaml'}: topic {spec.name} declared twice")
        topics[spec.name] = spec
    events_path = root / "events.yaml"
    events: dict[str, CatalogEvent] = {}
    for i, entry in enumerate(events_doc.get("events") or []):
        event = parse_event(entry, f"{root / 'events.yaml'}: events[{i}]")
        if event.type in events:
            raise CatalogError(f"{root / 'events.yaml'}: event {event.type} declared twice")
        if event.topic not in topics:
            raise CatalogError(f"{events_path}: event {event.type} names unknown topic {event.topic}")
        events[event.type] = event
    headers = tuple(
        HeaderSpec(
            name=str(_require(h, "name", "topics.yaml headers")),
            required=bool(h.get("required", False)),
            description=str(h.get("description", "")),
        )
        for h in topics_doc.get("headers") or []
    )
    return Catalog(topics=topics, events=events, headers=headers, root=root)


@functools.cache
def default_catalog() -> Catalog:
    """The repository's catalog, loaded once."""
    return load_catalog()


def envelope_class(topic: str) -> type[Message]:
    """Generated envelope class of a canonical topic of the repository's catalog."""
    return default_catalog().envelope_class(topic)
