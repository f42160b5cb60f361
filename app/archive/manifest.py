"""Object keys of archived files and the manifest of each (tenant, business unit, window), chained (pure).

**Object keys** are deterministic from (tenant, business unit, format, window, conversation), so a re-run
after a crash writes the same keys (and, the renderers being deterministic, the same bytes)::

    tenant=<tenant>/bu=<business unit>/<format>/<window label>/<conversation id>.<extension>
    tenant=<tenant>/bu=<business unit>/manifests/<window label>.json

``<format>`` is the :class:`app.archive.policy.ArchiveFormat` value (``actiance_xml``, ``eml``,
``jsonl``), ``<extension>`` its file extension (``xml``, ``eml``, ``jsonl``), ``<window label>``
:attr:`app.archive.policy.Window.label` (``20240331T000000Z_20240401T000000Z``: UTC start and end, so keys
sort by time). Tenant, business unit and conversation id are percent-encoded (every byte of their UTF-8 other
than ``A-Z a-z 0-9 - _ . ~``; ``.`` and ``..`` as ``%2E`` / ``%2E%2E``), so a key has exactly the ``/`` of the
layout and two different inputs never share a key. A policy's destination prefix (``s3://bucket/prefix``)
goes in front of these keys; that is the sink's business.

**Manifests.** One per (tenant, business unit, window), written after the window's files, including for a
window in which nothing was archived (an empty manifest), so a missing window shows as a gap in the chain.
It lists, sorted: every file (key, format, conversation, SHA-256, size), the event counts per conversation
and event type, the canonical offsets the window's events were read from (given by the caller:
``topic``, ``partition``, first and last offset, inclusive) and the SHA-256 of the previous window's manifest
(``previous_sha256``, ``""`` for the first of a chain). JSON layout (:meth:`Manifest.to_json`, compact,
keys sorted; the manifest's hash is the SHA-256 of these bytes)::

    {"version": 1, "tenant": "acme", "business_unit": "trading",
     "window": {"start_ms": ..., "end_ms": ..., "label": "..."},
     "files": [{"key": ..., "format": "eml", "conversation_id": ..., "sha256": ..., "size": ...}, ...],
     "counts": {conversation id: {event type: n}},
     "offsets": [{"topic": ..., "partition": 0, "first_offset": 10, "last_offset": 42}, ...],
     "previous_sha256": "..."}

:func:`verify_chain` walks manifests in window order and reports every break.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

from app.archive.policy import ArchiveFormat, Window
from app.archive.window import ConversationWindow

MANIFEST_VERSION = 1
"""Version of :meth:`Manifest.to_json`'s layout."""

EXTENSIONS = {ArchiveFormat.ACTIANCE_XML: "xml", ArchiveFormat.EML: "eml", ArchiveFormat.JSONL: "jsonl"}
"""File extension of each format's objects."""


def key_segment(value: str) -> str:
    """``value`` percent-encoded as one segment of an object key; ValueError when empty."""
    if not value:
        raise ValueError("an object key segment may not be empty")
    if value in (".", ".."):
        return "%2E" * len(value)
    return quote(value, safe="")


def _scope(tenant: str, business_unit: str) -> str:
    return f"tenant={key_segment(tenant)}/bu={key_segment(business_unit)}"


def object_key(
    tenant: str, business_unit: str, fmt: ArchiveFormat, window: Window, conversation_id: str
) -> str:
    """The key of one conversation's file in one format for one window (layout in the module docstring)."""
    fmt = ArchiveFormat(fmt)
    return (
        f"{_scope(tenant, business_unit)}/{fmt.value}/{window.label}/"
        f"{key_segment(conversation_id)}.{EXTENSIONS[fmt]}"
    )


def manifest_key(tenant: str, business_unit: str, window: Window) -> str:
    """The key of the manifest of (tenant, business unit, window)."""
    return f"{_scope(tenant, business_unit)}/manifests/{window.label}.json"


def sha256_hex(data: bytes) -> str:
    """Lower-case hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class RenderedFile:
    """One rendered file of a window, before it is delivered: its format, conversation and bytes."""

    format: ArchiveFormat
    conversation_id: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, order=True)
class ManifestFile:
    """One delivered file as the manifest lists it."""

    key: str
    format: str
    conversation_id: str
    sha256: str
    size: int


@dataclass(frozen=True, order=True)
class OffsetRange:
    """Offsets ``first_offset`` to ``last_offset`` (inclusive) of one canonical topic partition."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int

    def __post_init__(self) -> None:
        if self.partition < 0 or self.first_offset < 0 or self.last_offset < self.first_offset:
            raise ValueError(f"not an offset range: {self}")


@dataclass(frozen=True, order=True)
class SupplementFile:
    """A supplement delivered with a later window: late events of ``original_window`` (its label) for one
    conversation, and the key of the file it supplements (``""`` when that window had no file of it)."""

    key: str
    format: str
    conversation_id: str
    sha256: str
    size: int
    original_window: str
    original_key: str
    counts: tuple[tuple[str, int], ...] = ()
    """(event type, n) of the late events it holds, types sorted."""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SupplementFile:
        """The supplement of its JSON object."""
        fields = {k: v for k, v in raw.items() if k != "counts"}
        return cls(**fields, counts=tuple((str(t), int(n)) for t, n in raw.get("counts", ())))


def supplement_key(
    tenant: str,
    business_unit: str,
    fmt: ArchiveFormat,
    window: Window,
    original: Window,
    conversation_id: str,
) -> str:
    """The key of a supplement delivered with ``window`` for late events of ``original``::

    tenant=<t>/bu=<bu>/<format>/<window label>/supplements/<original label>/<conversation id>.<extension>
    """
    fmt = ArchiveFormat(fmt)
    return (
        f"{_scope(tenant, business_unit)}/{fmt.value}/{window.label}/supplements/{original.label}/"
        f"{key_segment(conversation_id)}.{EXTENSIONS[fmt]}"
    )


@dataclass(frozen=True)
class Manifest:
    """The manifest of one (tenant, business unit, window); see the module docstring."""

    tenant: str
    business_unit: str
    window: Window
    files: tuple[ManifestFile, ...]
    counts: Mapping[str, Mapping[str, int]]
    offsets: tuple[OffsetRange, ...]
    previous_sha256: str = ""
    supplements: tuple[SupplementFile, ...] = ()
    """Late events of earlier windows delivered with this one (listed in the JSON only when there are any)."""

    @property
    def key(self) -> str:
        """The manifest's object key."""
        return manifest_key(self.tenant, self.business_unit, self.window)

    def totals(self) -> dict[str, int]:
        """{event type: n} over every conversation, types sorted."""
        totals: dict[str, int] = {}
        for per_type in self.counts.values():
            for event_type, n in per_type.items():
                totals[event_type] = totals.get(event_type, 0) + n
        return dict(sorted(totals.items()))

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the module docstring."""
        return {
            "version": MANIFEST_VERSION,
            "tenant": self.tenant,
            "business_unit": self.business_unit,
            "window": {
                "start_ms": self.window.start_ms,
                "end_ms": self.window.end_ms,
                "label": self.window.label,
            },
            "files": [asdict(f) for f in sorted(self.files)],
            "counts": {c: dict(sorted(t.items())) for c, t in sorted(self.counts.items())},
            "offsets": [asdict(o) for o in sorted(self.offsets)],
            "previous_sha256": self.previous_sha256,
            **({"supplements": [asdict(f) for f in sorted(self.supplements)]} if self.supplements else {}),
        }

    def to_json(self) -> bytes:
        """Compact JSON, keys and lists sorted: equal manifests give equal bytes."""
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()

    @property
    def sha256(self) -> str:
        """SHA-256 (hex) of :meth:`to_json`: what the next manifest's ``previous_sha256`` holds."""
        return sha256_hex(self.to_json())

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """The manifest of its JSON; ValueError when ``data`` is not one."""
        try:
            raw = json.loads(data)
            if raw["version"] != MANIFEST_VERSION:
                raise ValueError(f"manifest version {raw['version']!r}, expected {MANIFEST_VERSION}")
            window = Window(int(raw["window"]["start_ms"]), int(raw["window"]["end_ms"]))
            files = tuple(ManifestFile(**f) for f in raw["files"])
            offsets = tuple(OffsetRange(**o) for o in raw["offsets"])
            counts = {str(c): {str(t): int(n) for t, n in per.items()} for c, per in raw["counts"].items()}
            return cls(
                str(raw["tenant"]),
                str(raw["business_unit"]),
                window,
                files,
                counts,
                offsets,
                str(raw["previous_sha256"]),
                tuple(SupplementFile.from_dict(f) for f in raw.get("supplements", ())),
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not an archive manifest: {exc!r}") from exc


def build_manifest(
    tenant: str,
    business_unit: str,
    window: Window,
    conversations: Iterable[ConversationWindow],
    files: Iterable[RenderedFile],
    offsets: Iterable[OffsetRange],
    previous: Manifest | None,
) -> Manifest:
    """The manifest of a window's archived ``conversations`` and their rendered ``files``.

    ``previous``: the manifest of the business unit's previous window (None for the first). ValueError when a
    conversation or file belongs to another (tenant, business unit, window), a file's conversation is not
    among ``conversations``, or two files share a (format, conversation).
    """
    counts: dict[str, dict[str, int]] = {}
    for cw in conversations:
        if (cw.tenant, cw.business_unit, cw.window) != (tenant, business_unit, window):
            raise ValueError(
                f"conversation {cw.conversation_id} of {cw.tenant}/{cw.business_unit} {cw.window.label} "
                f"given for {tenant}/{business_unit} {window.label}"
            )
        if cw.conversation_id in counts:
            raise ValueError(f"conversation {cw.conversation_id} given twice")
        counts[cw.conversation_id] = cw.event_counts()
    listed: dict[str, ManifestFile] = {}
    for rendered in files:
        if rendered.conversation_id not in counts:
            raise ValueError(f"file of conversation {rendered.conversation_id}, which is not in the window")
        fmt = ArchiveFormat(rendered.format)
        key = object_key(tenant, business_unit, fmt, window, rendered.conversation_id)
        if key in listed:
            raise ValueError(f"two {fmt.value} files for conversation {rendered.conversation_id}")
        listed[key] = ManifestFile(
            key, fmt.value, rendered.conversation_id, sha256_hex(rendered.data), len(rendered.data)
        )
    return Manifest(
        tenant=tenant,
        business_unit=business_unit,
        window=window,
        files=tuple(sorted(listed.values())),
        counts=counts,
        offsets=tuple(sorted(offsets)),
        previous_sha256=previous.sha256 if previous is not None else "",
    )


@dataclass(frozen=True)
class ChainBreak:
    """One break in a chain of manifests: at which (position, window label), what kind, and the details.

    Kinds: ``"previous_hash"`` (``previous_sha256`` is not the hash of the manifest before it),
    ``"scope"`` (another tenant or business unit than the first), ``"overlap"`` (a window that starts before
    the previous one ends, or out of order), ``"gap"`` (a window that starts after the previous one ended:
    a manifest is missing), ``"contents"`` (a file key that does not match its format, conversation and
    window, or a file of a conversation without counts).
    """

    position: int
    window_label: str
    kind: str
    detail: str


def verify_chain(
    manifests: Sequence[Manifest], *, first_previous_sha256: str | None = None
) -> list[ChainBreak]:
    """Every break of the chain ``manifests`` (in window order); empty when the chain is whole.

    ``first_previous_sha256``: the hash the first manifest must point back to (``""`` when it must be the
    chain's first); None to accept any (verifying a range that starts mid-chain).
    """
    breaks: list[ChainBreak] = []
    for position, manifest in enumerate(manifests):
        label = manifest.window.label

        def report(kind: str, detail: str, position: int = position, label: str = label) -> None:
            breaks.append(ChainBreak(position, label, kind, detail))

        if position == 0:
            if first_previous_sha256 is not None and manifest.previous_sha256 != first_previous_sha256:
                report(
                    "previous_hash",
                    f"points back to {manifest.previous_sha256 or 'nothing'}, expected "
                    f"{first_previous_sha256 or 'nothing'}",
                )
        else:
            before = manifests[position - 1]
            if manifest.previous_sha256 != before.sha256:
                report(
                    "previous_hash",
                    f"points back to {manifest.previous_sha256 or 'nothing'}, but the manifest of "
                    f"{before.window.label} hashes to {before.sha256}",
                )
            if (manifest.tenant, manifest.business_unit) != (manifests[0].tenant, manifests[0].business_unit):
                report(
                    "scope",
                    f"{manifest.tenant}/{manifest.business_unit} in a chain of "
                    f"{manifests[0].tenant}/{manifests[0].business_unit}",
                )
            if manifest.window.start_ms < before.window.end_ms:
                report("overlap", f"starts before the previous window {before.window.label} ends")
            elif manifest.window.start_ms > before.window.end_ms:
                report("gap", f"no manifest between {before.window.label} and {label}")
        for listed in manifest.files:
            try:
                expected = object_key(
                    manifest.tenant,
                    manifest.business_unit,
                    ArchiveFormat(listed.format),
                    manifest.window,
                    listed.conversation_id,
                )
            except ValueError as exc:
                report("contents", f"file {listed.key}: {exc}")
                continue
            if listed.key != expected:
                report("contents", f"file {listed.key} should have key {expected}")
            if listed.conversation_id not in manifest.counts:
                report("contents", f"file {listed.key} of a conversation without counts")
    return breaks
