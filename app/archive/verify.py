"""What a compliance officer can check from the archive's objects alone (pure): the bucket side of
``carryover archive verify``.

For a chain of manifests of one (tenant, business unit), :func:`verify_objects` reports:

* breaks of the manifest chain (:func:`app.archive.manifest.verify_chain`: hash links, gaps, overlaps, keys);
* per window, files and supplements listed in the manifest that are **missing**, or whose bytes do not have
  the listed SHA-256 and size (**altered**);
* **completeness across partitions**: the manifest has one offset range per partition of the topic, the
  window's parts are all there, and each partition's part starts where its part of the previous window ended
  (``after_offset`` = the previous part's ``through_offset``);
* for S3, objects that are not locked in COMPLIANCE mode until at least ``now``.

It does not recompute the archive from the canonical topics (that independent check is not written yet).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from app.archive.manifest import Manifest, ManifestFile, SupplementFile, sha256_hex, verify_chain
from app.archive.parts import ManifestPart


@dataclass(frozen=True)
class ObjectFacts:
    """An archived object as read back: its bytes (None when missing) and its lock (None: no lock known)."""

    data: bytes | None
    lock_mode: str | None = None
    retain_until: datetime | None = None


@dataclass
class VerifyReport:
    """Problems found, by kind; ``ok`` when there are none."""

    chain: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    unlocked: list[str] = field(default_factory=list)
    events_missing: list[str] = field(default_factory=list)
    events_duplicated: list[str] = field(default_factory=list)
    files: int = 0
    windows: int = 0
    recomputed: bool = False

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return not (
            self.chain
            or self.missing
            or self.altered
            or self.incomplete
            or self.unlocked
            or self.events_missing
            or self.events_duplicated
        )

    def lines(self) -> list[str]:
        """A readable report."""
        out = [
            f"windows {self.windows}, files {self.files}: missing {len(self.missing)}, altered "
            f"{len(self.altered)}, chain breaks {len(self.chain)}, incomplete {len(self.incomplete)}, "
            f"not locked {len(self.unlocked)}"
            + (
                f"; recomputed from the log: events missing {len(self.events_missing)}, duplicated "
                f"{len(self.events_duplicated)}"
                if self.recomputed
                else ""
            )
        ]
        kinds = (
            "chain",
            "missing",
            "altered",
            "incomplete",
            "unlocked",
            "events_missing",
            "events_duplicated",
        )
        for kind in kinds:
            out += [f"  {kind}: {item}" for item in getattr(self, kind)]
        return out


def verify_objects(
    manifests: Sequence[Manifest],
    parts: Mapping[str, Sequence[ManifestPart]],
    objects: Mapping[str, ObjectFacts],
    *,
    partitions: int,
    now: datetime | None,
    first_previous_sha256: str | None = "",
    missing_manifests: Sequence[str] = (),
) -> VerifyReport:
    """Check ``manifests`` (window order), their ``parts`` (by window label) and the listed ``objects``.

    ``now``: check Object Lock retention against it (None: no lock check, e.g. a local directory).
    ``missing_manifests``: labels of windows that should have closed and have no manifest.
    """
    report = VerifyReport(windows=len(manifests) + len(missing_manifests))
    report.missing += [
        f"the manifest of window {label} (closed, not delivered)" for label in missing_manifests
    ]
    for br in verify_chain(manifests, first_previous_sha256=first_previous_sha256):
        report.chain.append(f"{br.window_label}: {br.kind}: {br.detail}")
    previous_ends: dict[int, int] | None = None
    for manifest in manifests:
        label = manifest.window.label
        if sorted(o.partition for o in manifest.offsets) != list(range(partitions)):
            report.incomplete.append(
                f"{label}: offset ranges of partitions {[o.partition for o in manifest.offsets]}"
            )
        window_parts = list(parts.get(label, ()))
        if sorted(p.partition for p in window_parts) != list(range(partitions)):
            report.incomplete.append(
                f"{label}: parts of partitions {sorted(p.partition for p in window_parts)}"
            )
        if previous_ends is not None:
            for part in window_parts:
                if previous_ends.get(part.partition) != part.after_offset:
                    report.incomplete.append(
                        f"{label}: partition {part.partition} starts after offset {part.after_offset}, the "
                        f"previous window ended at {previous_ends.get(part.partition)}"
                    )
        previous_ends = {p.partition: p.through_offset for p in window_parts}
        listed_files: list[ManifestFile | SupplementFile] = [*manifest.files, *manifest.supplements]
        for listed in listed_files:
            report.files += 1
            facts = objects.get(listed.key)
            if facts is None or facts.data is None:
                report.missing.append(listed.key)
                continue
            if sha256_hex(facts.data) != listed.sha256 or len(facts.data) != listed.size:
                report.altered.append(listed.key)
            if now is not None and (
                facts.lock_mode != "COMPLIANCE" or facts.retain_until is None or facts.retain_until < now
            ):
                report.unlocked.append(f"{listed.key} ({facts.lock_mode}, until {facts.retain_until})")
    return report


def archived_counts(manifest: Manifest, supplements: Sequence[SupplementFile]) -> dict[str, dict[str, int]]:
    """{conversation: {event type: n}} archived for ``manifest``'s window: its own counts plus the counts of
    the supplements (delivered with later windows) whose original window it is, each delivery counted once
    (a supplement exists once per format)."""
    totals = {c: dict(per) for c, per in manifest.counts.items()}
    seen: set[tuple[str, str]] = set()
    for supplement in supplements:
        if supplement.original_window != manifest.window.label:
            continue
        delivered_with = supplement.key.split("/")[3]
        if (supplement.conversation_id, delivered_with) in seen:
            continue
        seen.add((supplement.conversation_id, delivered_with))
        per = totals.setdefault(supplement.conversation_id, {})
        for event_type, n in supplement.counts:
            per[event_type] = per.get(event_type, 0) + n
    return totals


def compare_counts(
    report: VerifyReport,
    label: str,
    expected: Mapping[str, Mapping[str, int]],
    archived: Mapping[str, Mapping[str, int]],
) -> None:
    """Add to ``report`` every event type of every conversation archived fewer or more times than expected."""
    report.recomputed = True
    for conversation in sorted(set(expected) | set(archived)):
        want, have = expected.get(conversation, {}), archived.get(conversation, {})
        for event_type in sorted(set(want) | set(have)):
            n, m = want.get(event_type, 0), have.get(event_type, 0)
            if m < n:
                report.events_missing.append(f"{label} {conversation}: {n - m} {event_type}")
            elif m > n:
                report.events_duplicated.append(f"{label} {conversation}: {m - n} {event_type}")
