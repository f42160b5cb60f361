"""An in-process Schema Registry for development and tests (``CARRYOVER_SCHEMA_REGISTRY_URL=mock://NAME``).

``CheckedMockRegistry`` is confluent's in-process mock plus what it lacks — compatibility levels and
checks, done by ``buf breaking`` (category CSR) on descriptor images, so that a breaking catalog change
fails locally exactly as the real registry would refuse it.
"""

from __future__ import annotations

import base64
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from confluent_kafka.schema_registry import RegisteredSchema, Schema, SchemaReference, SchemaRegistryError
from confluent_kafka.schema_registry._sync.mock_schema_registry_client import MockSchemaRegistryClient
from google.protobuf import descriptor_pb2, descriptor_pool

from app.catalog.paths import buf_executable
from app.catalog.registry import SUBJECT_ROOT_FILE, lookup


def _file_proto(name: str, text: str) -> descriptor_pb2.FileDescriptorProto:
    """A registered base64 schema string back as a FileDescriptorProto named ``name``."""
    proto = descriptor_pb2.FileDescriptorProto()
    proto.ParseFromString(base64.standard_b64decode(text))
    proto.name = name
    return proto


class CheckedMockRegistry(MockSchemaRegistryClient):
    """Confluent's in-process mock registry plus compatibility levels and checks (``buf breaking``, CSR).

    The stock mock accepts any change; this one rejects what a real registry would reject under the
    subject's level (NONE, BACKWARD[_TRANSITIVE], FORWARD[_TRANSITIVE], FULL[_TRANSITIVE]).
    """

    default_compatibility = "BACKWARD"

    def __init__(self, conf: dict[str, Any]) -> None:
        """Same configuration as the stock mock (``{"url": "mock://..."}``)."""
        super().__init__(conf)
        self._levels: dict[str, str] = {}

    def set_compatibility(self, subject_name: str | None = None, level: str | None = None) -> str:
        """Sets a subject's level (or the default for subjects without one)."""
        if level is None:
            raise ValueError("level must be set")
        if subject_name is None:
            self.default_compatibility = level.upper()
        else:
            self._levels[subject_name] = level.upper()
        return level.upper()

    def get_compatibility(self, subject_name: str | None = None) -> str:
        """The subject's level; 404 like the real registry when the subject has none of its own."""
        if subject_name is None:
            return self.default_compatibility
        if subject_name not in self._levels:
            raise SchemaRegistryError(
                404, 40408, f"Subject '{subject_name}' does not have subject-level compatibility"
            )
        return self._levels[subject_name]

    def test_compatibility(
        self,
        subject_name: str,
        schema: Schema,
        version: int | str = "latest",
        normalize: bool = False,
        verbose: bool = False,
    ) -> bool:
        """True when ``schema`` may follow the subject's versions under its level."""
        return not self.compatibility_problems(subject_name, schema)

    def test_compatibility_all_versions(
        self, subject_name: str, schema: Schema, normalize: bool = False, verbose: bool = False
    ) -> bool:
        """Same as test_compatibility: the level decides which versions are compared."""
        return not self.compatibility_problems(subject_name, schema)

    def register_schema_full_response(
        self, subject_name: str, schema: Schema, normalize_schemas: bool = False
    ) -> RegisteredSchema:
        """Registers like the real registry: an incompatible schema is refused with 409."""
        if lookup(self, subject_name, schema) is None:
            problems = self.compatibility_problems(subject_name, schema)
            if problems:
                raise SchemaRegistryError(
                    409,
                    409,
                    "Schema being registered is incompatible with an earlier schema: " + "; ".join(problems),
                )
        return super().register_schema_full_response(subject_name, schema, normalize_schemas)

    def get_versions(
        self,
        subject_name: str,
        deleted: bool = False,
        deleted_only: bool = False,
        offset: int = 0,
        limit: int = -1,
    ) -> list[int]:
        """Versions in ascending order, as the real registry lists them (the stock mock's order is random)."""
        versions = sorted(super().get_versions(subject_name, deleted, deleted_only))[offset:]
        return versions if limit < 0 else versions[:limit]

    def _level(self, subject: str) -> str:
        """Effective level of a subject."""
        return self._levels.get(subject, self.default_compatibility)

    def compatibility_problems(self, subject: str, schema: Schema) -> list[str]:
        """buf CSR findings between ``schema`` and the versions the subject's level compares; empty = ok."""
        level = self._level(subject)
        if level == "NONE" or subject not in self.get_subjects():
            return []
        versions = self.get_versions(subject)
        if not level.endswith("_TRANSITIVE"):
            versions = versions[-1:]
        base = level.removesuffix("_TRANSITIVE")
        problems: list[str] = []
        for version in versions:
            old = self.get_version(subject, version).schema
            if base in ("BACKWARD", "FULL"):
                problems += [
                    f"v{version}: {p}" for p in buf_csr_breaking(self._image(schema), self._image(old))
                ]
            if base in ("FORWARD", "FULL"):
                problems += [
                    f"v{version} (forward): {p}"
                    for p in buf_csr_breaking(self._image(old), self._image(schema))
                ]
        return problems

    def _image(self, schema: Schema) -> descriptor_pb2.FileDescriptorSet:
        """The schema and everything it imports (references resolved here, builtins from protobuf)."""
        files: dict[str, descriptor_pb2.FileDescriptorProto] = {}

        def add(name: str, text: str, refs: list[SchemaReference]) -> None:
            """Adds one file after its dependencies."""
            if name in files:
                return
            by_name = {r.name: r for r in refs}
            proto = _file_proto(name, text)
            for dep in proto.dependency:
                if dep in files:
                    continue
                if dep in by_name:
                    ref = by_name[dep]
                    assert ref.subject is not None and ref.version is not None
                    rs = self.get_version(ref.subject, ref.version).schema
                    add(dep, rs.schema_str or "", list(rs.references or []))
                else:
                    builtin = descriptor_pool.Default().FindFileByName(dep)
                    files[dep] = descriptor_pb2.FileDescriptorProto.FromString(builtin.serialized_pb)
            files[name] = proto

        add(SUBJECT_ROOT_FILE, schema.schema_str or "", list(schema.references or []))
        return descriptor_pb2.FileDescriptorSet(file=list(files.values()))


def buf_csr_breaking(
    new: descriptor_pb2.FileDescriptorSet, old: descriptor_pb2.FileDescriptorSet
) -> list[str]:
    """buf's CSR breaking-change findings of ``new`` against ``old`` (both descriptor images)."""
    with tempfile.TemporaryDirectory(prefix="carryover-compat-") as tmp:
        new_path, old_path = Path(tmp) / "new.binpb", Path(tmp) / "old.binpb"
        new_path.write_bytes(new.SerializeToString())
        old_path.write_bytes(old.SerializeToString())
        config = json.dumps({"version": "v2", "breaking": {"use": ["CSR"]}})
        result = subprocess.run(
            [
                buf_executable(),
                "breaking",
                str(new_path),
                "--against",
                str(old_path),
                "--config",
                config,
                "--error-format",
                "json",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode == 0:
        return []
    findings = [json.loads(line)["message"] for line in result.stdout.splitlines() if line.startswith("{")]
    return findings or [result.stderr.strip() or f"buf breaking exited {result.returncode}"]


_MOCKS: dict[str, CheckedMockRegistry] = {}


def mock_registry(url: str) -> CheckedMockRegistry:
    """The in-process registry named by ``mock://NAME`` (one per name, for the life of the process)."""
    if url not in _MOCKS:
        _MOCKS[url] = CheckedMockRegistry({"url": url})
    return _MOCKS[url]
