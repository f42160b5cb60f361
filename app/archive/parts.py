"""One partition's part of a window's manifest, and the manifest made of every part (pure).

The conversations of one (tenant, business unit, window) are spread over every partition of
``carryover.state.conversation-events.v1``, and each partition closes the window on its own event time. So
each partition writes a **part** when it closes the window (:class:`ManifestPart`, at :func:`part_key`): the
files it delivered, their event counts, and the offsets it covered — every record of the partition after the
previous window's close up to this close (``after_offset + 1`` .. ``through_offset``), plus, where earlier,
the first offset of an event of the window. A partition that saw nothing of the window still writes its
(empty) part.

The window's **manifest** (:mod:`app.archive.manifest`) is written once every partition's part is there
(:func:`manifest_from_parts`): its files and counts are the union of the parts', its offsets one range per
partition. Completeness across partitions is therefore checkable by anyone reading the bucket: the manifest
has exactly one offset range per partition of the topic, and each partition's ranges follow each other from
one window to the next without a gap (``after_offset`` of a part is ``through_offset`` of the partition's
part of the previous window).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from app.archive.manifest import Manifest, ManifestFile, OffsetRange, SupplementFile, _scope
from app.archive.policy import Window

PART_VERSION = 1


def parts_prefix(tenant: str, business_unit: str, window: Window) -> str:
    """The key prefix of a window's parts (ends with ``/``)."""
    return f"{_scope(tenant, business_unit)}/manifests/{window.label}.parts/"


def part_key(tenant: str, business_unit: str, window: Window, partition: int) -> str:
    """The key of one partition's part of a window's manifest."""
    return f"{parts_prefix(tenant, business_unit, window)}{partition:05d}.json"


@dataclass(frozen=True)
class ManifestPart:
    """What one partition archived of one (tenant, business unit, window)."""

    tenant: str
    business_unit: str
    window: Window
    topic: str
    partition: int
    partitions: int
    """How many partitions the topic has: how many parts make the manifest."""
    after_offset: int
    through_offset: int
    first_offset: int
    """The first offset this part covers: ``after_offset + 1``, or earlier (the offset of the window's first
    event), or ``through_offset`` when the window closed on the same record as the one before it."""
    files: tuple[ManifestFile, ...]
    counts: dict[str, dict[str, int]]
    supplements: tuple[SupplementFile, ...] = ()

    def to_json(self) -> bytes:
        """Compact JSON, keys sorted."""
        doc = {
            "version": PART_VERSION,
            "tenant": self.tenant,
            "business_unit": self.business_unit,
            "window": {"start_ms": self.window.start_ms, "end_ms": self.window.end_ms},
            "topic": self.topic,
            "partition": self.partition,
            "partitions": self.partitions,
            "after_offset": self.after_offset,
            "through_offset": self.through_offset,
            "first_offset": self.first_offset,
            "files": [asdict(f) for f in sorted(self.files)],
            "counts": {c: dict(sorted(t.items())) for c, t in sorted(self.counts.items())},
            **({"supplements": [asdict(f) for f in sorted(self.supplements)]} if self.supplements else {}),
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ManifestPart:
        """The part of its JSON; ValueError when it is not one."""
        try:
            raw = json.loads(data)
            if raw["version"] != PART_VERSION:
                raise ValueError(f"part version {raw['version']!r}")
            return cls(
                str(raw["tenant"]),
                str(raw["business_unit"]),
                Window(int(raw["window"]["start_ms"]), int(raw["window"]["end_ms"])),
                str(raw["topic"]),
                int(raw["partition"]),
                int(raw["partitions"]),
                int(raw["after_offset"]),
                int(raw["through_offset"]),
                int(raw["first_offset"]),
                tuple(ManifestFile(**f) for f in raw["files"]),
                {str(c): {str(t): int(n) for t, n in per.items()} for c, per in raw["counts"].items()},
                tuple(SupplementFile.from_dict(f) for f in raw.get("supplements", ())),
            )
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a manifest part: {exc!r}") from exc


def manifest_from_parts(parts: Sequence[ManifestPart], previous: Manifest | None) -> Manifest:
    """The window's manifest from every partition's part; ValueError when parts are missing or mixed up."""
    if not parts:
        raise ValueError("no parts")
    first = parts[0]
    scope = (first.tenant, first.business_unit, first.window, first.topic, first.partitions)
    for part in parts:
        if (part.tenant, part.business_unit, part.window, part.topic, part.partitions) != scope:
            raise ValueError(f"part of partition {part.partition} belongs to another window or topic")
    numbers = sorted(p.partition for p in parts)
    if numbers != list(range(first.partitions)):
        raise ValueError(f"parts of partitions {numbers}, expected 0..{first.partitions - 1}")
    files: list[ManifestFile] = []
    supplements: list[SupplementFile] = []
    counts: dict[str, dict[str, int]] = {}
    for part in parts:
        files.extend(part.files)
        supplements.extend(part.supplements)
        for conversation, per_type in part.counts.items():
            if conversation in counts:
                raise ValueError(f"conversation {conversation} in two partitions' parts")
            counts[conversation] = dict(per_type)
    offsets = tuple(OffsetRange(p.topic, p.partition, p.first_offset, p.through_offset) for p in parts)
    return Manifest(
        tenant=first.tenant,
        business_unit=first.business_unit,
        window=first.window,
        files=tuple(sorted(files)),
        counts=counts,
        offsets=tuple(sorted(offsets)),
        previous_sha256=previous.sha256 if previous is not None else "",
        supplements=tuple(sorted(supplements)),
    )
