"""Catalog governance: ``buf lint``, ``buf breaking`` against a git ref (category CSR), and our own rules.

Our rules (on buf's image of catalog/proto, so they hold for the sources, not the generated code):
one top-level type per file named after it; every event in exactly one envelope's ``event`` oneof;
events.yaml/topics.yaml and the protos agree; common attributes ``tenant_id=1, event_id=2, event_time=3,
provenance=4``; ids (``*user_id``, ``conversation_id``, ``message_id``) are strings.
Every problem is one line: ``file:line: what is wrong (fix: how)``.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2

from app.catalog.model import Catalog, CatalogError, load_catalog
from app.catalog.paths import CATALOG_DIR, REPO_ROOT, buf_executable

FieldProto = descriptor_pb2.FieldDescriptorProto
COMMON_PACKAGE = "carryover.common.v1"
COMMON_ATTRIBUTES = (
    (1, "tenant_id", FieldProto.TYPE_STRING, ""),
    (2, "event_id", FieldProto.TYPE_STRING, ""),
    (3, "event_time", FieldProto.TYPE_MESSAGE, ".google.protobuf.Timestamp"),
    (4, "provenance", FieldProto.TYPE_MESSAGE, ".carryover.common.v1.Provenance"),
)
_STRING_ID = re.compile(r"(^|_)user_id$|^conversation_id$|^message_id$|^parent_message_id$")
_MESSAGE_PATH, _FIELD_PATH, _ONEOF_PATH = 4, 2, 8


@dataclass(frozen=True, order=True)
class Problem:
    """One finding, printable as ``file:line: message (fix: ...)``."""

    file: str
    line: int
    message: str
    fix: str = ""

    def __str__(self) -> str:
        """The finding as a compiler-style line."""
        return f"{self.file}:{self.line}: {self.message}" + (f" (fix: {self.fix})" if self.fix else "")


def _rel(path: Path) -> str:
    """A path relative to the repository when it is inside it."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _run_buf(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Runs the pinned buf CLI."""
    return subprocess.run([buf_executable(), *args], cwd=cwd, capture_output=True, text=True, check=False)


def _buf_problems(result: subprocess.CompletedProcess[str], base: Path, fix: str) -> list[Problem]:
    """buf's JSON findings as Problems (paths made relative to ``base``); stderr when it failed otherwise."""
    problems = []
    for line in result.stdout.splitlines():
        if line.startswith("{"):
            item = json.loads(line)
            problems.append(
                Problem(
                    _rel(base / item["path"]),
                    int(item.get("start_line", 1)),
                    f"{item['message']} [{item.get('type', 'buf')}]",
                    fix,
                )
            )
    if result.returncode != 0 and not problems:
        problems.append(
            Problem(_rel(base), 1, f"buf failed: {result.stderr.strip() or result.stdout.strip()}")
        )
    return problems


def buf_lint(catalog_dir: Path = CATALOG_DIR) -> list[Problem]:
    """``buf lint`` of the catalog workspace (rules in catalog/buf.yaml)."""
    result = _run_buf(["lint", "--error-format", "json"], catalog_dir)
    return _buf_problems(result, catalog_dir, "follow the Buf style guide: https://buf.build/docs/lint/rules")


def buf_breaking(against: str, repo_root: Path = REPO_ROOT, subdir: str = "catalog") -> list[Problem]:
    """``buf breaking`` of the working tree's catalog against git ``against`` (category CSR, from buf.yaml).

    A ref without a catalog (before the first release) has nothing to break: no problems.
    """
    probe = subprocess.run(
        ["git", "cat-file", "-e", f"{against}:{subdir}/buf.yaml"],
        cwd=repo_root,
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        verify = subprocess.run(
            ["git", "rev-parse", "--verify", f"{against}^{{commit}}"],
            cwd=repo_root,
            capture_output=True,
            check=False,
        )
        if verify.returncode != 0:
            return [
                Problem(subdir, 1, f"git ref {against!r} not found", "fetch it or name an existing ref/tag")
            ]
        return []
    result = _run_buf(
        ["breaking", subdir, "--against", f".git#ref={against},subdir={subdir}", "--error-format", "json"],
        repo_root,
    )
    return _buf_problems(
        result,
        repo_root,
        "keep the old field/type/number (add new fields instead), or publish a new topic version (.v2)",
    )


def build_image(catalog_dir: Path = CATALOG_DIR) -> descriptor_pb2.FileDescriptorSet:
    """buf's image of the catalog with source info (line numbers), as a FileDescriptorSet."""
    with tempfile.TemporaryDirectory(prefix="carryover-lint-") as tmp:
        out = Path(tmp) / "image.binpb"
        result = _run_buf(["build", "-o", str(out)], catalog_dir)
        if result.returncode != 0:
            raise CatalogError(f"buf build failed: {result.stderr.strip()}")
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


class _Lines:
    """Line numbers of declarations in one file, from its source code info."""

    def __init__(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        """Indexes the file's locations by path."""
        self._lines = {tuple(loc.path): loc.span[0] + 1 for loc in file.source_code_info.location if loc.span}

    def at(self, *path: int) -> int:
        """1-based line of the declaration at ``path`` (1 when unknown)."""
        return self._lines.get(path, 1)


def _snake(name: str) -> str:
    """CamelCase -> snake_case."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _yaml_line(path: Path, needle: str) -> int:
    """1-based line of the first line of ``path`` containing ``needle`` (1 when absent)."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return number
    return 1


def _sensitive_field_problems(
    event_type: str,
    paths: tuple[str, ...],
    messages: dict[str, tuple[descriptor_pb2.FileDescriptorProto, int]],
    events_yaml: Path,
    line: int,
) -> list[Problem]:
    """Sensitive-field paths (``field`` or ``field.subfield``) that do not name a field of the event."""
    problems = []
    for path in paths:
        owner, ok = event_type, True
        for part in path.split("."):
            if owner not in messages:
                ok = False
                break
            file, i = messages[owner]
            fd = next((f for f in file.message_type[i].field if f.name == part), None)
            if fd is None:
                ok = False
                break
            owner = fd.type_name.lstrip(".")
        if not ok:
            problems.append(
                Problem(
                    _rel(events_yaml),
                    line,
                    f"sensitive field {path!r} of {event_type} is not a field of the event",
                    "use the proto field name (field or field.subfield)",
                )
            )
    return problems


def check_protos_and_metadata(catalog: Catalog, image: descriptor_pb2.FileDescriptorSet) -> list[Problem]:
    """Our rules over the proto image and the YAML metadata."""
    problems: list[Problem] = []
    proto_dir = catalog.root / "proto"
    envelopes = {t.envelope: t.name for t in catalog.topics.values() if t.envelope}
    messages: dict[str, tuple[descriptor_pb2.FileDescriptorProto, int]] = {}
    ours = [f for f in image.file if f.name.startswith("carryover/")]

    for file in ours:
        where, lines = _rel(proto_dir / file.name), _Lines(file)
        top = [m.name for m in file.message_type] + [e.name for e in file.enum_type]
        if len(top) != 1:
            problems.append(
                Problem(
                    where,
                    1,
                    f"{len(top)} top-level types ({', '.join(top) or 'none'}); "
                    "the catalog wants exactly one per file",
                    "move each type to its own file",
                )
            )
        for name in top:
            if file.name.rsplit("/", 1)[-1] != f"{_snake(name)}.proto":
                problems.append(
                    Problem(
                        where,
                        1,
                        f"file of {name} is not named {_snake(name)}.proto",
                        f"rename the file to {_snake(name)}.proto",
                    )
                )
        for i, message in enumerate(file.message_type):
            messages[f"{file.package}.{message.name}"] = (file, i)

    memberships: dict[str, list[str]] = {}
    for full_name, (file, i) in sorted(messages.items()):
        message, where, lines = file.message_type[i], _rel(proto_dir / file.name), _Lines(file)
        if full_name in envelopes:
            oneof_names = [o.name for o in message.oneof_decl]
            if oneof_names != ["event"] or any(not f.HasField("oneof_index") for f in message.field):
                problems.append(
                    Problem(
                        where,
                        lines.at(_MESSAGE_PATH, i),
                        f"envelope {message.name} must hold exactly one oneof named 'event' and nothing else",
                        "put every event field inside `oneof event { ... }`",
                    )
                )
            for j, fd in enumerate(message.field):
                if fd.type != FieldProto.TYPE_MESSAGE:
                    problems.append(
                        Problem(
                            where,
                            lines.at(_MESSAGE_PATH, i, _FIELD_PATH, j),
                            f"envelope field {fd.name} is not an event message",
                            "oneof members must be event messages",
                        )
                    )
                    continue
                memberships.setdefault(fd.type_name.lstrip("."), []).append(full_name)
            continue
        if file.package == COMMON_PACKAGE:
            continue
        # an event: common attributes first, ids as strings
        by_number = {fd.number: (j, fd) for j, fd in enumerate(message.field)}
        for number, name, type_, type_name in COMMON_ATTRIBUTES:
            entry = by_number.get(number)
            want = type_name.lstrip(".") or "string"
            if (
                entry is None
                or entry[1].name != name
                or entry[1].type != type_
                or entry[1].type_name != type_name
            ):
                line = (
                    lines.at(_MESSAGE_PATH, i, _FIELD_PATH, entry[0]) if entry else lines.at(_MESSAGE_PATH, i)
                )
                problems.append(
                    Problem(
                        where,
                        line,
                        f"{message.name}: field {number} must be `{want} {name}`",
                        "every event starts with tenant_id=1, event_id=2, event_time=3, "
                        "provenance=4; own fields from 5",
                    )
                )
        for j, fd in enumerate(message.field):
            if _STRING_ID.search(fd.name) and fd.type != FieldProto.TYPE_STRING:
                problems.append(
                    Problem(
                        where,
                        lines.at(_MESSAGE_PATH, i, _FIELD_PATH, j),
                        f"{message.name}.{fd.name} is an id and must be a string",
                        "ids are decimal strings: use `string`",
                    )
                )
        if full_name not in catalog.events:
            problems.append(
                Problem(
                    where,
                    lines.at(_MESSAGE_PATH, i),
                    f"event {full_name} is not in events.yaml",
                    "add it to catalog/events.yaml with topic, producers, consumers",
                )
            )

    for full_name, (file, i) in sorted(messages.items()):
        if file.package == COMMON_PACKAGE or full_name in envelopes:
            continue
        found = memberships.get(full_name, [])
        if len(found) != 1:
            problems.append(
                Problem(
                    _rel(proto_dir / file.name),
                    _Lines(file).at(_MESSAGE_PATH, i),
                    f"event {full_name} is in {len(found)} envelopes ({', '.join(found) or 'none'})",
                    "add it to exactly one envelope's `oneof event`",
                )
            )

    events_yaml, topics_yaml = catalog.root / "events.yaml", catalog.root / "topics.yaml"
    for envelope, topic in envelopes.items():
        if envelope not in messages:
            problems.append(
                Problem(
                    _rel(topics_yaml),
                    _yaml_line(topics_yaml, f"envelope: {envelope}"),
                    f"topic {topic} names envelope {envelope}, which no .proto defines",
                    "fix the name or add the envelope proto",
                )
            )
    for event in catalog.events.values():
        line = _yaml_line(events_yaml, f"type: {event.type}")
        if event.type not in messages:
            problems.append(
                Problem(
                    _rel(events_yaml),
                    line,
                    f"event {event.type} has no .proto",
                    "fix the type (protobuf full name) or add the proto",
                )
            )
            continue
        problems += _sensitive_field_problems(event.type, event.sensitive_fields, messages, events_yaml, line)
        topic_spec = catalog.topics[event.topic]
        if topic_spec.envelope is None:
            problems.append(
                Problem(
                    _rel(events_yaml),
                    line,
                    f"event {event.type} is on {event.topic}, which carries no envelope",
                    "put it on a canonical topic",
                )
            )
        elif topic_spec.envelope not in memberships.get(event.type, []):
            problems.append(
                Problem(
                    _rel(events_yaml),
                    line,
                    f"event {event.type} is on {event.topic} but {topic_spec.envelope} does not contain it",
                    f"add it to {topic_spec.envelope}'s oneof or fix the topic",
                )
            )
    return sorted(set(problems))


def lint(catalog_dir: Path = CATALOG_DIR) -> list[Problem]:
    """Everything ``carryover catalog lint`` checks: buf lint, then our rules."""
    problems = buf_lint(catalog_dir)
    try:
        catalog = load_catalog(catalog_dir)
        image = build_image(catalog_dir)
    except CatalogError as exc:
        return [*problems, Problem(_rel(catalog_dir), 1, str(exc))]
    return problems + check_protos_and_metadata(catalog, image)
