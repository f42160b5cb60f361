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
    files: int = 0
    windows: int = 0

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return not (self.chain or self.missing or self.altered or self.incomplete or self.unlocked)

    def lines(self) -> list[str]:
        """A readable report."""
        out = [
            f"windows {self.windows}, files {self.files}: missing {len(self.missing)}, altered "
            f"{len(self.altered)}, chain breaks {len(self.chain)}, incomplete {len(self.incomplete)}, "
            f"not locked {len(self.unlocked)}"
        ]
        for kind in ("chain", "missing", "altered", "incomplete", "unlocked"):
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
