"""app.archive.policy: JSON round trip, validation with messages that say how to fix, destinations, and the
windows of cron (DST in Europe/London and America/New_York) and fixed schedules (tables + hypothesis)."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.archive.policy import (
    ArchiveFormat,
    ArchivePolicy,
    CronSchedule,
    Destination,
    FixedSchedule,
    PolicyError,
    Window,
    parse_destination,
    window_of,
    windows_between,
)

HOUR_MS = 3_600_000


def _ms(zone: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone)).timestamp() * 1000)


def _policy(**changes: object) -> dict[str, object]:
    raw: dict[str, object] = {
        "tenant": "acme-bank",
        "business_unit": "trading",
        "schedule": {"cron": "0 0 * * *", "time_zone": "Europe/London"},
        "formats": ["actiance_xml", "eml", "jsonl"],
        "destination": "s3://acme-archive/carryover/eu",
        "retention_days": 2555,
        "grace_seconds": 900,
    }
    raw.update(changes)
    return {k: v for k, v in raw.items() if v is not None}


# -- JSON --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"schedule": {"every_seconds": 3600}},
        {"schedule": {"cron": "*/15 9-17 * * 1-5", "time_zone": "America/New_York"}},
        {"formats": ["jsonl"], "destination": "file:///var/archive", "redact_suppressed": True},
        {"destination": "s3://acme-archive", "grace_seconds": 0, "retention_days": 1},
        {"tenant": "Zürich Bank", "business_unit": "FX/Rates"},
    ],
)
def test_json_round_trip(changes: dict[str, object]) -> None:
    policy = ArchivePolicy.from_json(json.dumps(_policy(**changes)))
    again = ArchivePolicy.from_json(policy.to_json())
    assert again == policy
    assert again.to_json() == policy.to_json()
    assert json.loads(policy.to_json())["version"] == 1


def test_fields_as_read() -> None:
    policy = ArchivePolicy.from_json(json.dumps(_policy()))
    assert policy.schedule == CronSchedule("0 0 * * *", "Europe/London")
    assert policy.formats == (ArchiveFormat.ACTIANCE_XML, ArchiveFormat.EML, ArchiveFormat.JSONL)
    assert policy.grace_ms == 900_000
    assert policy.redact_suppressed is False
    assert policy.parsed_destination == Destination("s3", bucket="acme-archive", prefix="carryover/eu")


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"schedule": {"cron": "0 0 * *", "time_zone": "UTC"}}, "has 4 fields: write the five standard ones"),
        ({"schedule": {"cron": "0 0 * * * *", "time_zone": "UTC"}}, "has 6 fields"),
        ({"schedule": {"cron": "61 0 * * *", "time_zone": "UTC"}}, "is not valid"),
        ({"schedule": {"cron": "0 0 31 2 *", "time_zone": "UTC"}}, "is not valid"),
        ({"schedule": {"cron": "0 0 29 2 *", "time_zone": "UTC"}}, "fires less than once in 366 days"),
        ({"schedule": {"cron": "0 0 * * *", "time_zone": "Mars/Olympus"}}, "is not an IANA time zone"),
        ({"schedule": {"cron": "0 0 * * *"}}, "without time_zone"),
        ({"schedule": "daily"}, "schedule must be an object"),
        ({"schedule": {"every_seconds": 59}}, "every_seconds 59 is out of range"),
        ({"schedule": {"every_seconds": "3600"}}, "neither a cron schedule nor a fixed window"),
        ({"formats": ["pdf"]}, "format 'pdf' is unknown: choose among actiance_xml, eml, jsonl"),
        ({"formats": []}, "formats is empty"),
        ({"formats": ["eml", "eml"]}, "lists a format more than once"),
        ({"destination": "ftp://host/x"}, "use s3://BUCKET/PREFIX"),
        ({"destination": "s3://Acme_Archive/x"}, "is not an S3 bucket name"),
        ({"destination": "s3://acme-archive/a//b"}, "empty, '.' or '..' segments"),
        ({"destination": "file://relative/dir"}, "not an absolute local directory"),
        ({"destination": "s3://acme-archive/x?versionId=1"}, "has a query or fragment"),
        ({"retention_days": 0}, "retention_days 0 is out of range: give 1 to"),
        ({"retention_days": None}, "retention_days is missing"),
        ({"retention_days": True}, "retention_days must be a whole number"),
        ({"grace_seconds": -1}, "grace_seconds -1 is out of range"),
        ({"tenant": ""}, "tenant must be a non-empty string"),
        ({"business_unit": "fx\ndesk"}, "has control characters"),
        ({"redact_suppressed": "no"}, "redact_suppressed must be true or false"),
        ({"colour": "blue"}, "unknown field(s) colour"),
        ({"version": 2}, "version 2 is not supported"),
    ],
)
def test_invalid_policies_say_how_to_fix(changes: dict[str, object], says: str) -> None:
    with pytest.raises(PolicyError) as caught:
        ArchivePolicy.from_json(json.dumps(_policy(**changes)))
    assert says in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    raw = _policy(formats=["pdf"], destination="ftp://x", retention_days=0, tenant="")
    with pytest.raises(PolicyError) as caught:
        ArchivePolicy.from_dict(raw)
    assert len(caught.value.problems) == 4, caught.value.problems


@pytest.mark.parametrize("data", [b"{not json", b"[1, 2]", b'"policy"'])
def test_not_a_policy_object(data: bytes) -> None:
    with pytest.raises(PolicyError):
        ArchivePolicy.from_json(data)


def test_constructor_validates_too() -> None:
    with pytest.raises(PolicyError, match="retention_days"):
        ArchivePolicy("t", "b", FixedSchedule(3600), (ArchiveFormat.EML,), "file:///a", 0, 0)


@pytest.mark.parametrize(
    ("url", "destination"),
    [
        ("s3://acme-archive", Destination("s3", bucket="acme-archive")),
        ("s3://acme-archive/", Destination("s3", bucket="acme-archive")),
        ("s3://acme.archive-1/a/b/", Destination("s3", bucket="acme.archive-1", prefix="a/b")),
        ("file:///var/archive/", Destination("file", path="/var/archive")),
        ("file://localhost/tmp", Destination("file", path="/tmp")),
    ],
)
def test_destinations(url: str, destination: Destination) -> None:
    assert parse_destination(url) == destination


# -- windows -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("Europe/London", (2024, 3, 30), 24),
        ("Europe/London", (2024, 3, 31), 23),  # clocks go forward at 01:00 GMT
        ("Europe/London", (2024, 10, 27), 25),  # clocks go back at 02:00 BST
        ("America/New_York", (2024, 3, 10), 23),
        ("America/New_York", (2024, 11, 3), 25),
        ("America/New_York", (2024, 11, 4), 24),
    ],
)
def test_daily_windows_run_from_local_midnight_to_local_midnight(
    zone: str, day: tuple[int, int, int], hours: int
) -> None:
    schedule = CronSchedule("0 0 * * *", zone)
    noon = _ms(zone, *day, 12)
    window = window_of(schedule, noon)
    assert window.start_ms == _ms(zone, *day, 0)
    assert (window.end_ms - window.start_ms) == hours * HOUR_MS
    local_end = datetime.fromtimestamp(window.end_ms / 1000, tz=ZoneInfo(zone))
    assert (local_end.hour, local_end.minute) == (0, 0)


def test_daily_windows_across_the_london_spring_change_are_contiguous() -> None:
    zone = "Europe/London"
    windows = list(
        windows_between(CronSchedule("0 0 * * *", zone), _ms(zone, 2024, 3, 29, 6), _ms(zone, 2024, 4, 2))
    )
    assert [w.label for w in windows] == [
        "20240329T000000Z_20240330T000000Z",
        "20240330T000000Z_20240331T000000Z",
        "20240331T000000Z_20240331T230000Z",
        "20240331T230000Z_20240401T230000Z",
    ]


def test_new_york_daily_windows_across_the_autumn_change() -> None:
    zone = "America/New_York"
    windows = list(
        windows_between(CronSchedule("0 0 * * *", zone), _ms(zone, 2024, 11, 2), _ms(zone, 2024, 11, 5))
    )
    assert [(w.end_ms - w.start_ms) // HOUR_MS for w in windows] == [24, 25, 24]
    assert windows[1].label == "20241103T040000Z_20241104T050000Z"


def test_hourly_windows_through_the_repeated_hour_are_one_hour_each() -> None:
    zone = "Europe/London"
    start = _ms("UTC", 2024, 10, 26, 23)
    windows = list(windows_between(CronSchedule("0 * * * *", zone), start, start + 4 * HOUR_MS))
    assert [w.end_ms - w.start_ms for w in windows] == [HOUR_MS] * 4


def test_a_firing_in_the_skipped_hour_fires_after_the_gap() -> None:
    zone = "Europe/London"
    window = window_of(CronSchedule("30 1 * * *", zone), _ms("UTC", 2024, 3, 31, 12))
    assert window.start_ms == _ms("UTC", 2024, 3, 31, 1)  # 02:00 BST, the first minute after the gap
    assert window.end_ms == _ms("UTC", 2024, 4, 1, 0, 30)  # 01:30 BST


@pytest.mark.parametrize(
    ("seconds", "t", "window"),
    [
        (3600, 0, Window(0, HOUR_MS)),
        (3600, HOUR_MS - 1, Window(0, HOUR_MS)),
        (3600, HOUR_MS, Window(HOUR_MS, 2 * HOUR_MS)),
        (90, 1_000_000, Window(990_000, 1_080_000)),
        (86400, -1, Window(-86_400_000, 0)),
    ],
)
def test_fixed_windows_are_aligned_on_the_epoch(seconds: int, t: int, window: Window) -> None:
    assert window_of(FixedSchedule(seconds), t) == window


def test_window_boundaries_belong_to_the_next_window() -> None:
    schedule = CronSchedule("0 0 * * *", "Europe/London")
    window = window_of(schedule, _ms("Europe/London", 2024, 6, 1, 12))
    assert window_of(schedule, window.end_ms).start_ms == window.end_ms
    assert window_of(schedule, window.end_ms - 1) == window
    assert window_of(schedule, window.start_ms) == window


def test_windows_between_an_empty_range() -> None:
    assert list(windows_between(FixedSchedule(60), 10, 10)) == []


def test_window_label_with_milliseconds() -> None:
    assert Window(1_500, 61_000).label == "19700101T000001.500Z_19700101T000101Z"


SCHEDULES = [
    CronSchedule("0 0 * * *", "Europe/London"),
    CronSchedule("0 0 * * *", "America/New_York"),
    CronSchedule("0 * * * *", "Europe/London"),
    CronSchedule("30 1 * * *", "Europe/London"),
    CronSchedule("15 2 * * *", "America/New_York"),
    CronSchedule("*/20 9-17 * * 1-5", "America/New_York"),
    CronSchedule("0 6 1 * *", "UTC"),
    FixedSchedule(3600),
    FixedSchedule(7 * 86400 + 1),
]
_2024 = _ms("UTC", 2024, 1, 1)


def test_the_hour_a_clock_goes_back_is_in_the_window_that_began_before_it() -> None:
    # 01:59 BST on 2024-10-27, the last minute before London's clocks go back: the daily 01:30 window that
    # began at 01:30 BST runs to 01:30 GMT the next day (25 hours); found by the property test below
    daily = CronSchedule("30 1 * * *", "Europe/London")
    t = _ms("Europe/London", 2024, 10, 27, 1, 59)
    start = _ms("UTC", 2024, 10, 27, 0, 30)
    assert window_of(daily, t) == Window(start, start + 25 * HOUR_MS)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SCHEDULES), st.integers(_2024, _2024 + 365 * 24 * HOUR_MS))
def test_every_instant_is_in_its_window_and_windows_are_contiguous(schedule: object, t: int) -> None:
    window = window_of(schedule, t)  # type: ignore[arg-type]
    assert window.contains(t)
    following = window_of(schedule, window.end_ms)  # type: ignore[arg-type]
    assert following.start_ms == window.end_ms
    preceding = window_of(schedule, window.start_ms - 1)  # type: ignore[arg-type]
    assert preceding.end_ms == window.start_ms
    between = list(windows_between(schedule, t, following.end_ms))  # type: ignore[arg-type]
    assert between == [window, following]
