"""app.archive.closing: the policy book, the per-partition close rule (event time, ticks), late events,
replays; app.archive.parts: a window's manifest from every partition's part."""

from __future__ import annotations

import json

import pytest

from app.archive.closing import PolicyBook, Progress, observe, parse_tick, tick_headers
from app.archive.manifest import ManifestFile, object_key, sha256_hex, verify_chain
from app.archive.parts import ManifestPart, manifest_from_parts, part_key
from app.archive.policy import ArchiveFormat, Window, policy_id

MIN = 60_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
FIRST = Window(T0, T0 + 5 * MIN)


def policy(
    tenant: str = "acme", unit: str = "Rates", every: int = 300, grace: int = 60, **extra: object
) -> bytes:
    raw = {
        "tenant": tenant,
        "business_unit": unit,
        "schedule": {"every_seconds": every},
        "formats": ["jsonl"],
        "destination": "file:///tmp/archive",
        "retention_days": 1,
        "grace_seconds": grace,
        "since_ms": T0,
        **extra,
    }
    return json.dumps(raw).encode()


def book(*values: bytes) -> PolicyBook:
    made = PolicyBook()
    for value in values:
        raw = json.loads(value)
        assert made.apply(policy_id(raw["tenant"], raw["business_unit"]).encode(), value, 0) is None
    return made


def test_the_book_keeps_the_last_policy_per_key_and_forgets_on_a_tombstone() -> None:
    made = book(policy(every=300), policy(every=600), policy(unit="FX"))
    assert [p.id for p in made.all()] == ["acme/FX", "acme/Rates"]
    rates = made.get("acme/Rates")
    assert rates is not None and rates.policy.schedule.every_seconds == 600  # type: ignore[union-attr]
    made.apply(b"acme/FX", None, 0)
    assert [p.id for p in made.of_tenant("acme")] == ["acme/Rates"]


def test_the_book_refuses_unreadable_policies_and_keys_that_do_not_match() -> None:
    made = PolicyBook()
    assert "not JSON" in (made.apply(b"acme/Rates", b"{", 0) or "")
    assert "under key" in (made.apply(b"acme/FX", policy(), 0) or "")
    assert len(made) == 0 and made.unreadable == 2


def test_without_since_the_chain_starts_at_the_records_timestamp() -> None:
    made = PolicyBook()
    raw = json.loads(policy())
    del raw["since_ms"]
    made.apply(b"acme/Rates", json.dumps(raw).encode(), T0 + 7 * MIN)
    active = made.get("acme/Rates")
    assert active is not None and active.first_window == Window(T0 + 5 * MIN, T0 + 10 * MIN)


def test_windows_close_in_order_when_event_time_passes_end_plus_grace() -> None:
    made, progress = book(policy()), Progress()
    step = observe(progress, made, 0, tenant="acme", time_ms=T0 + MIN)
    assert step.added == (("acme/Rates", T0),) and not step.closes
    assert not observe(progress, made, 1, tenant="acme", time_ms=T0 + 5 * MIN + 59_999).closes  # grace
    step = observe(progress, made, 2, tenant="other", time_ms=T0 + 16 * MIN)  # any tenant moves the watermark
    assert [(c.window, c.after_offset, c.through_offset, c.first_offset) for c in step.closes] == [
        (Window(T0, T0 + 5 * MIN), -1, 2, 0),
        (Window(T0 + 5 * MIN, T0 + 10 * MIN), 2, 2, 1),  # the event at offset 1 was in the second window
        (Window(T0 + 10 * MIN, T0 + 15 * MIN), 2, 2, None),  # 16 min = end + grace: closes too, empty
    ]
    step = observe(progress, made, 3, tenant="acme", time_ms=T0 + 2 * MIN)
    assert step.late == ("acme/Rates",) and step.added == () and progress.late == 1


def test_a_tick_closes_windows_like_an_event_and_replays_change_nothing() -> None:
    made, progress = book(policy(), policy(unit="FX", every=600, grace=0)), Progress()
    observe(progress, made, 10, tenant="acme", time_ms=T0 + MIN)
    step = observe(progress, made, 11, tenant=None, time_ms=T0 + 20 * MIN)
    closed = [(c.policy.id, c.window.start_ms - T0) for c in step.closes]
    assert closed == [
        ("acme/FX", 0),
        ("acme/FX", 10 * MIN),
        ("acme/Rates", 0),
        ("acme/Rates", 5 * MIN),
        ("acme/Rates", 10 * MIN),
    ]
    saved = progress.to_json()
    assert observe(progress, made, 11, tenant=None, time_ms=T0 + 90 * MIN) == observe(
        progress, made, 5, tenant=None, time_ms=0
    )
    assert Progress.from_json(saved).to_json() == saved == progress.to_json()
    assert parse_tick(tick_headers(T0)) == T0 and parse_tick([("x", b"1")]) is None


def test_a_deleted_policy_stops_closing() -> None:
    made, progress = book(policy()), Progress()
    observe(progress, made, 0, tenant="acme", time_ms=T0)
    made.apply(b"acme/Rates", None, 0)
    assert observe(progress, made, 1, tenant="acme", time_ms=T0 + 60 * MIN).closes == ()
    assert progress.cursors == {}


def test_events_before_since_are_not_archived_nor_late() -> None:
    made, progress = book(policy()), Progress()
    step = observe(progress, made, 0, tenant="acme", time_ms=T0 - MIN)
    assert step.added == () and step.late == ()


def _part(
    partition: int,
    files: tuple[ManifestFile, ...] = (),
    counts: dict[str, dict[str, int]] | None = None,
    window: Window = FIRST,
) -> ManifestPart:
    return ManifestPart(
        "acme",
        "Rates",
        window,
        "t.events",
        partition,
        2,
        9 + partition,
        20 + partition,
        5 + partition,
        files,
        counts or {},
    )


def test_the_manifest_is_made_of_every_partitions_part_and_chains() -> None:
    key = object_key("acme", "Rates", ArchiveFormat.JSONL, Window(T0, T0 + 5 * MIN), "c1")
    file = ManifestFile(key, "jsonl", "c1", "ab" * 32, 10)
    parts = [_part(1, (file,), {"c1": {"message_sent": 2}}), _part(0)]
    assert ManifestPart.from_json(parts[0].to_json()) == parts[0]
    first = manifest_from_parts(parts, None)
    assert first.files == (file,) and first.counts == {"c1": {"message_sent": 2}}
    assert [(o.partition, o.first_offset, o.last_offset) for o in first.offsets] == [(0, 5, 20), (1, 6, 21)]
    following = manifest_from_parts(
        [
            _part(0, window=Window(T0 + 5 * MIN, T0 + 10 * MIN)),
            _part(1, window=Window(T0 + 5 * MIN, T0 + 10 * MIN)),
        ],
        first,
    )
    assert verify_chain([first, following], first_previous_sha256="") == []
    with pytest.raises(ValueError, match="expected 0..1"):
        manifest_from_parts([_part(0)], None)
    assert part_key("acme", "Rates", Window(T0, T0 + 5 * MIN), 3).endswith(".parts/00003.json")


def test_verify_finds_missing_altered_incomplete_and_unlocked_objects() -> None:
    import datetime as dt  # noqa: PLC0415

    from app.archive.verify import ObjectFacts, verify_objects  # noqa: PLC0415

    second = Window(T0 + 5 * MIN, T0 + 10 * MIN)
    data = b'{"record":"event"}\n'
    key = object_key("acme", "Rates", ArchiveFormat.JSONL, second, "c1")
    file = ManifestFile(key, "jsonl", "c1", sha256_hex(data), len(data))
    first_parts = [_part(0), _part(1)]
    second_parts = [
        ManifestPart(
            "acme", "Rates", second, "t.events", 0, 2, 20, 30, 21, (file,), {"c1": {"message_sent": 1}}
        ),
        ManifestPart("acme", "Rates", second, "t.events", 1, 2, 21, 31, 22, (), {}),
    ]
    first = manifest_from_parts(first_parts, None)
    following = manifest_from_parts(second_parts, first)
    parts = {FIRST.label: first_parts, second.label: second_parts}
    now = dt.datetime.now(dt.UTC)
    locked = ObjectFacts(data, "COMPLIANCE", now + dt.timedelta(days=1))

    def check(objects: dict[str, ObjectFacts], **changes: object) -> list[str]:
        options: dict[str, object] = {"partitions": 2, "now": now, **changes}
        report = verify_objects([first, following], parts, objects, **options)  # type: ignore[arg-type]
        return report.lines()[1:]

    assert check({key: locked}) == []
    assert check({}) == [f"  missing: {key}"]
    assert check({key: ObjectFacts(b"x", "COMPLIANCE", now + dt.timedelta(days=1))}) == [f"  altered: {key}"]
    assert check({key: ObjectFacts(data, "GOVERNANCE", now)})[0].startswith(f"  unlocked: {key}")
    assert check({key: ObjectFacts(data)}, now=None) == []
    assert check({key: locked}, partitions=3)[0].startswith("  incomplete:")
    parts[second.label] = [second_parts[0]]
    assert "parts of partitions [0]" in check({key: locked})[0]
    parts[second.label] = [second_parts[0], _part(1, window=second)]  # partition 1 does not follow on
    assert "partition 1 starts after offset 10, the previous window ended at 21" in check({key: locked})[0]
    report = verify_objects(
        [first], {FIRST.label: first_parts}, {}, partitions=2, now=None, missing_manifests=["w"]
    )
    assert not report.ok and report.missing == ["the manifest of window w (closed, not delivered)"]


def test_late_events_are_delivered_with_the_next_close_and_survive_the_progress_json() -> None:
    made, progress = book(policy()), Progress()
    observe(progress, made, 0, tenant="acme", time_ms=T0 + MIN, conversation_key="acme/c1")
    assert len(observe(progress, made, 1, tenant="acme", time_ms=T0 + 6 * MIN).closes) == 1
    step = observe(progress, made, 2, tenant="acme", time_ms=T0 + 2 * MIN, conversation_key="acme/c1")
    assert step.late == ("acme/Rates",)
    progress = Progress.from_json(progress.to_json())
    (close,) = observe(progress, made, 3, tenant=None, time_ms=T0 + 11 * MIN).closes
    assert close.window == Window(T0 + 5 * MIN, T0 + 10 * MIN)
    assert [(e.window, e.conversation_key, e.offset) for e in close.late] == [(FIRST, "acme/c1", 2)]
    assert observe(progress, made, 4, tenant=None, time_ms=T0 + 16 * MIN).closes[0].late == ()


def test_a_supplement_has_its_own_key_under_the_window_it_is_delivered_with() -> None:
    from app.archive.manifest import Manifest, SupplementFile, supplement_key  # noqa: PLC0415

    second = Window(T0 + 5 * MIN, T0 + 10 * MIN)
    key = supplement_key("acme", "Rates", ArchiveFormat.EML, second, FIRST, "c/1")
    assert key == (
        "tenant=acme/bu=Rates/eml/20260101T000500Z_20260101T001000Z/supplements/"
        "20260101T000000Z_20260101T000500Z/c%2F1.eml"
    )
    extra = SupplementFile(key, "eml", "c/1", "ab" * 32, 3, FIRST.label, "", (("message_sent", 2),))
    plain = manifest_from_parts([_part(0), _part(1)], None)
    assert b"supplements" not in plain.to_json()  # manifests without supplements keep their layout
    with_extra = manifest_from_parts(
        [ManifestPart(**{**_part(0).__dict__, "supplements": (extra,)}), _part(1)], None
    )
    assert Manifest.from_json(with_extra.to_json()).supplements == (extra,)


def test_recomputed_counts_find_missing_and_duplicated_events_supplements_included() -> None:
    from app.archive.manifest import SupplementFile, supplement_key  # noqa: PLC0415
    from app.archive.verify import VerifyReport, archived_counts, compare_counts  # noqa: PLC0415

    manifest = manifest_from_parts([_part(0, counts={"c1": {"message_sent": 2}}), _part(1)], None)
    second = Window(T0 + 5 * MIN, T0 + 10 * MIN)
    late = [
        SupplementFile(
            supplement_key("acme", "Rates", fmt, second, FIRST, "c1"),
            fmt.value,
            "c1",
            "ab" * 32,
            1,
            FIRST.label,
            "",
            (("message_sent", 1),),
        )
        for fmt in (ArchiveFormat.EML, ArchiveFormat.JSONL)  # one delivery in two formats: counted once
    ]
    archived = archived_counts(manifest, late)
    assert archived == {"c1": {"message_sent": 3}}
    report = VerifyReport()
    compare_counts(report, FIRST.label, {"c1": {"message_sent": 3}, "c2": {"member_joined": 1}}, archived)
    assert report.events_missing == [f"{FIRST.label} c2: 1 member_joined"] and report.events_duplicated == []
    compare_counts(report, FIRST.label, {"c1": {"message_sent": 2}}, archived)
    assert report.events_duplicated == [f"{FIRST.label} c1: 1 message_sent"]
    assert not report.ok and "recomputed from the log: events missing 1, duplicated 1" in report.lines()[0]
