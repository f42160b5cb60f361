"""Readable documentation of the catalog: a Markdown catalog and an AsyncAPI 3.0 document.

``carryover catalog docs --out docs/catalog`` writes ``README.md`` (topics, headers, events, fields with
types and descriptions, owners, producers, consumers, sensitive fields) and ``asyncapi.yaml`` (the
canonical topics). Field descriptions are the proto comments, read from buf's image. Output is
deterministic, so the generated files can be committed and diffed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from google.protobuf import descriptor_pb2

from app.catalog.lint import build_image
from app.catalog.model import Catalog, CatalogEvent, TopicSpec, load_catalog
from app.catalog.paths import CATALOG_DIR

FieldProto = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    value: name.removeprefix("TYPE_").lower()
    for name, value in FieldProto.Type.items()
    if name not in ("TYPE_MESSAGE", "TYPE_ENUM", "TYPE_GROUP")
}
_MESSAGE_PATH, _FIELD_PATH = 4, 2
PROTOBUF_SCHEMA_FORMAT = "application/vnd.google.protobuf;version=3"


class ProtoIndex:
    """Messages of the catalog image with their comments and source text."""

    def __init__(self, image: descriptor_pb2.FileDescriptorSet, proto_root: Path) -> None:
        """Indexes every message by full name."""
        self.messages: dict[str, descriptor_pb2.DescriptorProto] = {}
        self.files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
        self.comments: dict[tuple[str, ...], str] = {}
        self.proto_root = proto_root
        for file in image.file:
            comments = {
                tuple(loc.path): loc.leading_comments.strip()
                for loc in file.source_code_info.location
                if loc.leading_comments
            }
            for i, message in enumerate(file.message_type):
                full = f"{file.package}.{message.name}"
                self.messages[full] = message
                self.files[full] = file
                self.comments[(full,)] = comments.get((_MESSAGE_PATH, i), "")
                for j, fd in enumerate(message.field):
                    self.comments[(full, fd.name)] = comments.get((_MESSAGE_PATH, i, _FIELD_PATH, j), "")

    def description(self, full_name: str, field: str | None = None) -> str:
        """The proto comment of a message or one of its fields, on one line."""
        key = (full_name,) if field is None else (full_name, field)
        return " ".join(self.comments.get(key, "").split())

    def source(self, full_name: str) -> str:
        """The .proto text that defines ``full_name``."""
        return (self.proto_root / self.files[full_name].name).read_text()


def field_type(fd: descriptor_pb2.FieldDescriptorProto) -> str:
    """A field's type as written in .proto, e.g. ``repeated carryover.common.v1.Mention``."""
    if fd.type in (FieldProto.TYPE_MESSAGE, FieldProto.TYPE_ENUM):
        base = fd.type_name.lstrip(".")
    else:
        base = _SCALARS[fd.type]
    return f"repeated {base}" if fd.label == FieldProto.LABEL_REPEATED else base


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _retention(spec: TopicSpec) -> str:
    """Retention or compaction, in words."""
    if spec.compacted:
        return "compacted"
    if spec.retention_ms is None or spec.retention_ms < 0:
        return "forever"
    days = spec.retention_ms / 86_400_000
    return f"{days:g} days" if days >= 1 else f"{spec.retention_ms} ms"


def render_markdown(catalog: Catalog, index: ProtoIndex) -> str:
    """The whole catalog as one Markdown document."""
    out = [
        "# carryover event catalog",
        "",
        "Generated from `catalog/` by `carryover catalog docs`; do not edit by hand.",
        "",
        "## Topics",
        "",
        "| topic | key | partitions | retention | owners | value |",
        "|---|---|---|---|---|---|",
    ]
    for t in catalog.topics.values():
        value = (
            f"`{t.envelope}` (Confluent-framed protobuf). {t.description}" if t.envelope else t.description
        )
        out.append(
            f"| `{t.name}` | {_cell(t.key)} | {t.partitions} | {_retention(t)} | {', '.join(t.owners)} "
            f"| {_cell(value)} |"
        )
    out += [
        "",
        "## Headers of canonical records (CloudEvents binary mode)",
        "",
        "| header | required | meaning |",
        "|---|---|---|",
    ]
    out += [
        f"| `{h.name}` | {'yes' if h.required else 'no'} | {_cell(h.description)} |" for h in catalog.headers
    ]
    for topic in catalog.canonical_topics():
        assert topic.envelope is not None
        out += ["", f"## `{topic.name}`", "", index.description(topic.envelope), ""]
        out += [f"Envelope `{topic.envelope}`, subject `{topic.name}-value`, key: {topic.key}.", ""]
        for event in catalog.events_of(topic.name):
            out += _render_event(event, index)
    return "\n".join(out) + "\n"


def _render_event(event: CatalogEvent, index: ProtoIndex) -> list[str]:
    """Markdown section of one event."""
    message = index.messages[event.type]
    sensitive = set(event.sensitive_fields)
    lines = [
        f"### {event.name}",
        "",
        index.description(event.type),
        "",
        f"- type (`ce_type`): `{event.type}`",
        f"- producers: {', '.join(event.producers)}",
        f"- consumers: {', '.join(event.consumers)}",
        f"- sensitive fields: {', '.join(f'`{f}`' for f in event.sensitive_fields) or 'none'}",
        "",
        "| # | field | type | description |",
        "|---|---|---|---|",
    ]
    for fd in message.field:
        nested = sorted(f.split(".", 1)[1] for f in sensitive if f.startswith(fd.name + "."))
        flag = " **sensitive**" if fd.name in sensitive else ""
        if nested:
            flag = f" **sensitive: {', '.join(nested)}**"
        lines.append(
            f"| {fd.number} | `{fd.name}` | `{field_type(fd)}` | "
            f"{_cell(index.description(event.type, fd.name))}{flag} |"
        )
    lines.append("")
    return lines


def _header_schema(catalog: Catalog) -> dict[str, Any]:
    """JSON Schema of the record headers."""
    return {
        "type": "object",
        "required": [h.name for h in catalog.headers if h.required],
        "properties": {h.name: {"type": "string", "description": h.description} for h in catalog.headers},
    }


def render_asyncapi(catalog: Catalog, index: ProtoIndex, version: str = "1.0.0") -> dict[str, Any]:
    """An AsyncAPI 3.0 document of the canonical topics (carryover sends to them)."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in catalog.canonical_topics():
        assert topic.envelope is not None
        channel_messages = {}
        for event in catalog.events_of(topic.name):
            channel_messages[event.name] = {"$ref": f"#/components/messages/{event.type}"}
            messages[event.type] = {
                "name": event.name,
                "title": event.type,
                "summary": index.description(event.type),
                "contentType": "application/x-protobuf",
                "headers": {"$ref": "#/components/schemas/CloudEventsHeaders"},
                "payload": {"schemaFormat": PROTOBUF_SCHEMA_FORMAT, "schema": index.source(event.type)},
                "bindings": {"kafka": {"key": {"type": "string", "description": topic.key}}},
                "x-envelope": topic.envelope,
                "x-producers": list(event.producers),
                "x-consumers": list(event.consumers),
                "x-sensitive-fields": list(event.sensitive_fields),
            }
        channels[topic.name] = {
            "address": topic.name,
            "description": f"{topic.description} Value: {topic.envelope} in the Confluent wire format, "
            f"subject {topic.name}-value.",
            "messages": channel_messages,
            "bindings": {
                "kafka": {
                    "topic": topic.name,
                    "partitions": topic.partitions,
                    "topicConfiguration": {
                        "cleanup.policy": ["compact" if topic.compacted else "delete"],
                        **({"retention.ms": topic.retention_ms} if topic.retention_ms is not None else {}),
                    },
                }
            },
            "x-owners": list(topic.owners),
        }
        operations[f"publish-{topic.name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{topic.name}"},
            "messages": [
                {"$ref": f"#/channels/{topic.name}/messages/{e.name}"} for e in catalog.events_of(topic.name)
            ],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "carryover canonical events",
            "version": version,
            "description": "Canonical events carryover publishes from the legacy chat backend. "
            "Generated from catalog/ by `carryover catalog docs`.",
        },
        "defaultContentType": "application/x-protobuf",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": {"CloudEventsHeaders": _header_schema(catalog)}},
    }


def write_docs(out_dir: Path, catalog_dir: Path = CATALOG_DIR) -> list[Path]:
    """Writes README.md and asyncapi.yaml under ``out_dir``; returns their paths."""
    catalog = load_catalog(catalog_dir)
    index = ProtoIndex(build_image(catalog_dir), catalog_dir / "proto")
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = out_dir / "README.md"
    markdown.write_text(render_markdown(catalog, index))
    asyncapi = out_dir / "asyncapi.yaml"
    asyncapi.write_text(yaml.safe_dump(render_asyncapi(catalog, index), sort_keys=False, width=110))
    return [markdown, asyncapi]
