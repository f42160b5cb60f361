"""Schema Registry deployment of the catalog: every file as a subject, references, BACKWARD_TRANSITIVE.

Subjects follow what Confluent's own ProtobufSerializer does, so its serializers and deserializers find
exactly the schemas deployed here: an envelope's file is registered under ``<topic>-value``
(TopicNameStrategy), every file it imports under its file path (e.g. ``carryover/common/v1/link.proto``),
with schema references carrying the version of each; Google's well-known files are not registered.
Schema text is the base64 FileDescriptorProto, as the Python serializer registers it.

``mock://`` URLs (development and tests only) give :class:`app.dev.registry.CheckedMockRegistry`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from confluent_kafka.schema_registry import (
    RegisteredSchema,
    Schema,
    SchemaReference,
    SchemaRegistryClient,
    SchemaRegistryError,
)

from app.catalog.model import Catalog

if TYPE_CHECKING:
    from app.catalog.model import AnyFileDescriptor as FileDescriptor

COMPATIBILITY = "BACKWARD_TRANSITIVE"
_NOT_FOUND = 404
SUBJECT_ROOT_FILE = "subject_schema.proto"  # name given to a subject's own file when comparing versions


class DeployError(RuntimeError):
    """A schema could not be deployed; the message names the subject and the reason."""


@dataclass(frozen=True)
class SubjectResult:
    """What deploy did for one subject."""

    subject: str
    schema_id: int
    version: int
    registered: bool
    compatibility_set: bool


@dataclass
class DeployReport:
    """Every subject deploy touched, in registration (dependency) order."""

    subjects: list[SubjectResult] = field(default_factory=list)
    schema_ids: dict[str, int] = field(default_factory=dict)

    @property
    def registered(self) -> list[str]:
        """Subjects that got a new schema version in this run."""
        return [s.subject for s in self.subjects if s.registered]

    @property
    def changed(self) -> bool:
        """True when this run registered a schema or changed a compatibility level."""
        return any(s.registered or s.compatibility_set for s in self.subjects)

    def summary(self) -> str:
        """Human-readable lines for the CLI."""
        lines = [
            f"{'registered' if s.registered else 'unchanged':10} {s.subject} v{s.version} id={s.schema_id}"
            + (f" (compatibility set to {COMPATIBILITY})" if s.compatibility_set else "")
            for s in self.subjects
        ]
        if not self.changed:
            lines.append(f"nothing new: all {len(self.subjects)} subjects already deployed")
        else:
            lines.append(f"registered {len(self.registered)} of {len(self.subjects)} subjects")
        return "\n".join(lines)


def is_builtin(file_name: str) -> bool:
    """Files the registry already knows (Google / Confluent well-known types): never registered."""
    return file_name.startswith(("google/protobuf/", "google/type/", "confluent/"))


def schema_text(file: FileDescriptor) -> str:
    """The schema string Confluent's Python serializer registers: base64 of the FileDescriptorProto."""
    return base64.standard_b64encode(file.serialized_pb).decode("ascii")


def files_in_dependency_order(catalog: Catalog) -> list[tuple[FileDescriptor, str | None]]:
    """(file, topic when it is a topic's envelope file) for every file to register, dependencies first."""
    ordered: dict[str, tuple[FileDescriptor, str | None]] = {}

    def visit(file: FileDescriptor) -> None:
        """Post-order walk of the import graph."""
        if file.name in ordered or is_builtin(file.name):
            return
        for dep in file.dependencies:
            visit(dep)
        ordered[file.name] = (file, None)

    envelope_files = {}
    for topic in catalog.canonical_topics():
        file = catalog.envelope_class(topic.name).DESCRIPTOR.file
        envelope_files[file.name] = topic.name
        visit(file)
    return [(f, envelope_files.get(name)) for name, (f, _) in ordered.items()]


def subject_for(file: FileDescriptor, topic: str | None) -> str:
    """TopicNameStrategy for envelope files, the file path (Confluent's reference strategy) for the rest."""
    return f"{topic}-value" if topic is not None else file.name


def _is_not_found(exc: SchemaRegistryError) -> bool:
    """True for the registry's 404 family (subject / schema / version not found)."""
    return exc.http_status_code == _NOT_FOUND


def lookup(client: SchemaRegistryClient, subject: str, schema: Schema) -> RegisteredSchema | None:
    """The registered schema equal to ``schema`` under ``subject``, or None."""
    try:
        return client.lookup_schema(subject, schema)
    except SchemaRegistryError as exc:
        if _is_not_found(exc):
            return None
        raise


def compatibility_problems(client: SchemaRegistryClient, subject: str, schema: Schema) -> list[str]:
    """Why ``schema`` may not be added to ``subject`` under its compatibility level; empty = compatible."""
    own_check = getattr(client, "compatibility_problems", None)  # the dev tools' in-process registry
    if own_check is not None:
        return list(own_check(subject, schema))
    rest = getattr(client, "_rest_client", None)
    if rest is not None:  # the public method drops the verbose reasons, so ask the REST API directly
        response: Any = rest.post(
            f"compatibility/subjects/{quote(subject, safe='')}/versions?verbose=true", body=schema.to_dict()
        )
        if response.get("is_compatible", False):
            return []
        return [str(m) for m in response.get("messages") or ["registry reports the schema incompatible"]]
    ok = client.test_compatibility_all_versions(subject, schema, verbose=True)
    return [] if ok else ["registry reports the schema incompatible"]


def _compatibility_of(client: SchemaRegistryClient, subject: str) -> str | None:
    """The subject's own compatibility level, None when only the global default applies."""
    try:
        return str(client.get_compatibility(subject))
    except SchemaRegistryError as exc:
        if _is_not_found(exc):
            return None
        raise


def deploy(client: SchemaRegistryClient, catalog: Catalog) -> DeployReport:
    """Registers every catalog schema (dependencies first, with references) and sets BACKWARD_TRANSITIVE.

    Existing subjects are tested for compatibility first; an incompatible schema stops the deploy with a
    DeployError naming the subject and the registry's reasons. Running it again registers nothing.
    """
    report = DeployReport()
    versions: dict[str, tuple[str, int]] = {}  # file name -> (subject, version)
    existing_subjects = set(client.get_subjects())
    for file, topic in files_in_dependency_order(catalog):
        subject = subject_for(file, topic)
        references = [
            SchemaReference(dep.name, *versions[dep.name])
            for dep in file.dependencies
            if not is_builtin(dep.name)
        ]
        schema = Schema(schema_text(file), "PROTOBUF", references)
        compatibility_set = False
        if _compatibility_of(client, subject) != COMPATIBILITY:
            client.set_compatibility(subject, COMPATIBILITY)
            compatibility_set = True
        found = lookup(client, subject, schema)
        registered = found is None
        if found is None:
            if subject in existing_subjects:
                problems = compatibility_problems(client, subject, schema)
                if problems:
                    raise DeployError(
                        f"subject {subject} ({file.name}) is not {COMPATIBILITY}-compatible with its "
                        f"registered versions: {'; '.join(problems)}. Fix: make the change compatible (add "
                        "fields, never change or remove them), or publish a new topic version (.v2)"
                    )
            try:
                found = client.register_schema_full_response(subject, schema)
            except SchemaRegistryError as exc:
                raise DeployError(
                    f"subject {subject} ({file.name}): registry refused the schema: {exc}"
                ) from exc
        assert found.schema_id is not None and found.version is not None
        versions[file.name] = (subject, found.version)
        report.subjects.append(
            SubjectResult(subject, found.schema_id, found.version, registered, compatibility_set)
        )
        if topic is not None:
            report.schema_ids[topic] = found.schema_id
    return report


def schema_ids(
    client: SchemaRegistryClient, catalog: Catalog, *, auto_register: bool = False
) -> dict[str, int]:
    """topic -> schema id of its ``<topic>-value`` subject for the current catalog.

    Looks the schemas up; when one is missing, deploys the catalog if ``auto_register`` allows, else raises
    DeployError telling the operator to run ``carryover catalog deploy``.
    """
    ids: dict[str, int] = {}
    versions: dict[str, tuple[str, int]] = {}
    for file, topic in files_in_dependency_order(catalog):
        subject = subject_for(file, topic)
        references = [
            SchemaReference(dep.name, *versions[dep.name])
            for dep in file.dependencies
            if not is_builtin(dep.name)
        ]
        found = lookup(client, subject, Schema(schema_text(file), "PROTOBUF", references))
        if found is None or found.version is None or found.schema_id is None:
            if auto_register:
                return deploy(client, catalog).schema_ids
            raise DeployError(
                f"subject {subject} has no schema matching {file.name} of this build: "
                "run `carryover catalog deploy --registry URL` (or enable auto-registration)"
            )
        versions[file.name] = (subject, found.version)
        if topic is not None:
            ids[topic] = found.schema_id
    return ids


def registry_client(url: str) -> SchemaRegistryClient:
    """A client for ``url``; ``mock://NAME`` (development and tests) gives the dev tools' in-process
    registry, one per name (:class:`app.dev.registry.CheckedMockRegistry`)."""
    if not url:
        raise ValueError(
            "no schema registry: set CARRYOVER_SCHEMA_REGISTRY_URL to your Schema Registry "
            "(http(s)://host:port), or to mock://NAME for development"
        )
    if url.startswith("mock://"):
        from app.dev.registry import mock_registry  # noqa: PLC0415 - a dev URL needs the dev tools

        return mock_registry(url)
    return SchemaRegistryClient({"url": url})


def iter_subjects(catalog: Catalog) -> Iterator[str]:
    """Every subject the catalog deploys, dependencies first."""
    for file, topic in files_in_dependency_order(catalog):
        yield subject_for(file, topic)
