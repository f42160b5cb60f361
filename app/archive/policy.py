"""Archive policies per (tenant, business unit) and the windows they cut event time into (pure).

An :class:`ArchivePolicy` says how one business unit of one tenant is archived: its **schedule** (when
windows close), the **formats** rendered for each conversation of a window, the **destination**, the
**retention** of delivered objects and a **grace period** for late events. Policies are kept as JSON
(:meth:`ArchivePolicy.to_json` / :meth:`ArchivePolicy.from_json`, layout below); reading one validates every
field and raises :class:`PolicyError` listing each problem with how to fix it.

**Schedules.** Either a cron expression with an IANA time zone (:class:`CronSchedule`: the five standard
fields, minute hour day-of-month month day-of-week, evaluated by ``cronsim`` on the zone's wall clock), or a
fixed window length (:class:`FixedSchedule`: windows of ``every_seconds`` aligned on the Unix epoch, so
every worker cuts the same windows). A window is half-open, ``[start_ms, end_ms)``, in UTC epoch
milliseconds; consecutive windows share their boundary, so every instant belongs to exactly one.

For a cron schedule each firing closes one window and opens the next: ``window_of(policy, t)`` is
``[latest firing <= t, first firing > t)``. Daylight saving time follows cron (cronie) semantics, as cronsim
implements them: a daily ``0 0 * * *`` in Europe/London gives windows from local midnight to local midnight
(23 hours on the day the clocks go forward, 25 on the day they go back); a firing time that does not exist
on the wall clock (``30 1 * * *`` on the spring-forward day in London) fires at the first minute after the
gap; a firing time that occurs twice (the autumn fall-back hour) fires once, at its first occurrence, except
for a schedule that fires every hour (``*`` in the hour field), which fires in both. Windows longer than
:data:`MAX_WINDOW_DAYS` are refused (``0 0 29 2 *`` fires once in four years).

JSON layout (compact, keys sorted)::

    {"version": 1, "tenant": "acme", "business_unit": "trading",
     "schedule": {"cron": "0 0 * * *", "time_zone": "Europe/London"}   # or {"every_seconds": 3600}
     "formats": ["actiance_xml", "eml", "jsonl"],
     "destination": "s3://bucket/prefix",                              # or "file:///var/archive"
     "retention_days": 2555, "grace_seconds": 900, "redact_suppressed": false,
     "since_ms": 1767225600000}                                        # optional

``since_ms`` (optional): the policy archives windows from the one containing this instant (UTC epoch ms); the
first manifest of its chain is that window's. Without it, the streaming archive starts at the time the policy
was written to ``carryover.config.archive`` (the record's timestamp, the same for every worker).

``redact_suppressed`` (default false): suppressed messages are always archived with a suppression marker;
their text is left out only when this is true (redaction happens by explicit policy only).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

FORMAT_VERSION = 1
"""Version of :meth:`ArchivePolicy.to_json`'s layout (``"version"``)."""

MAX_WINDOW_DAYS = 366
"""The longest window a schedule may give (a yearly schedule fits, a leap-day one does not)."""
MIN_WINDOW_SECONDS = 60
"""The shortest fixed window (cron schedules cannot fire more often than once a minute either)."""
MAX_GRACE_SECONDS = 7 * 24 * 3600
"""The longest grace period: a window stays open this long after its end for late events."""
MAX_RETENTION_DAYS = 100 * 366
"""The longest retention a policy may ask for (S3 Object Lock takes up to 100 years)."""

_DAY_MS = 24 * 3600 * 1000
_MINUTE_S = 60


class ArchiveFormat(StrEnum):
    """A rendering of one conversation's window (one renderer module each under :mod:`app.archive`)."""

    ACTIANCE_XML = "actiance_xml"
    EML = "eml"
    JSONL = "jsonl"


class PolicyError(ValueError):
    """A policy that cannot be used; ``problems`` lists each one with how to fix it."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid archive policy:\n" + "\n".join(f"  - {p}" for p in self.problems))


@dataclass(frozen=True)
class Window:
    """One archive window, ``[start_ms, end_ms)`` in UTC epoch milliseconds."""

    start_ms: int
    end_ms: int

    def __post_init__(self) -> None:
        if self.end_ms <= self.start_ms:
            raise ValueError(f"a window must end after it starts: [{self.start_ms}, {self.end_ms})")

    def contains(self, t_ms: int) -> bool:
        """True when ``t_ms`` is in the window (its start included, its end not)."""
        return self.start_ms <= t_ms < self.end_ms

    @property
    def label(self) -> str:
        """``"20240331T000000Z_20240401T000000Z"``: start and end in UTC, the window's part of object keys.

        Milliseconds are added (``20240331T000000.250Z``) only for a boundary that is not a whole second.
        """
        return f"{_utc_basic(self.start_ms)}_{_utc_basic(self.end_ms)}"


def _utc_basic(t_ms: int) -> str:
    moment = datetime.fromtimestamp(t_ms // 1000, tz=UTC)
    text = moment.strftime("%Y%m%dT%H%M%S")
    return f"{text}.{t_ms % 1000:03d}Z" if t_ms % 1000 else f"{text}Z"


@dataclass(frozen=True)
class CronSchedule:
    """Windows between consecutive firings of a five-field cron ``expression`` on ``time_zone``'s clock."""

    expression: str
    time_zone: str


@dataclass(frozen=True)
class FixedSchedule:
    """Windows of ``every_seconds``, aligned on the Unix epoch (``[k * length, (k + 1) * length)``)."""

    every_seconds: int


Schedule = CronSchedule | FixedSchedule


@dataclass(frozen=True)
class Destination:
    """Where a policy's objects go: ``scheme`` ``"s3"`` (``bucket``, ``prefix``) or ``"file"`` (``path``).

    ``prefix`` has no leading or trailing ``/`` (``''`` for the bucket's root); ``path`` is absolute.
    """

    scheme: str
    bucket: str = ""
    prefix: str = ""
    path: str = ""


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_LIKE = re.compile(r"^\d+\.\d+\.\d+\.\d+$")


def parse_destination(url: str) -> Destination:
    """The :class:`Destination` of ``s3://bucket/prefix`` or ``file:///dir``; PolicyError when neither."""
    problems = _destination_problems(url)
    if problems:
        raise PolicyError(problems)
    parts = urlsplit(url)
    if parts.scheme == "s3":
        return Destination("s3", bucket=parts.netloc, prefix=parts.path.strip("/"))
    return Destination("file", path=parts.path.rstrip("/") or "/")


def _destination_problems(url: str) -> list[str]:
    fix = "use s3://BUCKET/PREFIX (S3, with Object Lock) or file:///ABSOLUTE/DIR (local demos)"
    if not isinstance(url, str) or not url:
        return [f"destination is missing: {fix}"]
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        return [f"destination {url!r} has a query or fragment: {fix}"]
    if parts.scheme == "s3":
        bucket = parts.netloc
        if not _BUCKET.match(bucket) or ".." in bucket or _IP_LIKE.match(bucket):
            return [
                f"destination {url!r}: {bucket!r} is not an S3 bucket name (3-63 characters: lower-case "
                "letters, digits, '.' and '-', starting and ending with a letter or digit)"
            ]
        prefix = parts.path.strip("/")
        if "//" in prefix or any(seg in (".", "..") for seg in prefix.split("/") if prefix):
            return [f"destination {url!r}: the prefix may not have empty, '.' or '..' segments"]
        return []
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            return [f"destination {url!r} is not an absolute local directory: write file:///ABSOLUTE/DIR"]
        return []
    return [f"destination {url!r} has scheme {parts.scheme!r}: {fix}"]


@dataclass(frozen=True)
class ArchivePolicy:
    """How one business unit of one tenant is archived (see the module docstring); validated when made."""

    tenant: str
    business_unit: str
    schedule: Schedule
    formats: tuple[ArchiveFormat, ...]
    destination: str
    retention_days: int
    grace_seconds: int
    redact_suppressed: bool = False
    since_ms: int | None = None

    def __post_init__(self) -> None:
        problems = _policy_problems(self)
        if problems:
            raise PolicyError(problems)

    @property
    def grace_ms(self) -> int:
        """The grace period in milliseconds."""
        return self.grace_seconds * 1000

    @property
    def parsed_destination(self) -> Destination:
        """The destination, parsed."""
        return parse_destination(self.destination)

    def to_dict(self) -> dict[str, Any]:
        """The policy as the JSON object of the module docstring."""
        schedule: dict[str, Any]
        if isinstance(self.schedule, CronSchedule):
            schedule = {"cron": self.schedule.expression, "time_zone": self.schedule.time_zone}
        else:
            schedule = {"every_seconds": self.schedule.every_seconds}
        return {
            "version": FORMAT_VERSION,
            "tenant": self.tenant,
            "business_unit": self.business_unit,
            "schedule": schedule,
            "formats": [str(f) for f in self.formats],
            "destination": self.destination,
            "retention_days": self.retention_days,
            "grace_seconds": self.grace_seconds,
            "redact_suppressed": self.redact_suppressed,
            **({} if self.since_ms is None else {"since_ms": self.since_ms}),
        }

    def to_json(self) -> bytes:
        """Compact JSON, keys sorted; equal policies give equal bytes."""
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()

    @classmethod
    def from_dict(cls, raw: Any) -> ArchivePolicy:
        """The policy of a JSON object; :class:`PolicyError` listing every problem found."""
        if not isinstance(raw, dict):
            raise PolicyError([f"a policy is a JSON object, got {type(raw).__name__}"])
        problems: list[str] = []
        known = {
            "version",
            "tenant",
            "business_unit",
            "schedule",
            "formats",
            "destination",
            "retention_days",
            "grace_seconds",
            "redact_suppressed",
            "since_ms",
        }
        unknown = sorted(set(raw) - known)
        if unknown:
            problems.append(
                f"unknown field(s) {', '.join(unknown)}: the fields are {', '.join(sorted(known))}"
            )
        version = raw.get("version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            problems.append(f"version {version!r} is not supported: this code reads version {FORMAT_VERSION}")
        for name in ("schedule", "formats"):
            if name not in raw:
                problems.append(f"{name} is missing")
        schedule = _read_schedule(raw.get("schedule"), problems) if "schedule" in raw else None
        reported = len(problems)
        formats = _read_formats(raw.get("formats"), problems) if "formats" in raw else ()
        formats_checked: tuple[ArchiveFormat, ...] | None = formats if len(problems) == reported else None
        retention = _read_int(raw, "retention_days", None, problems)
        grace = _read_int(raw, "grace_seconds", 0, problems)
        since = raw.get("since_ms")
        if since is not None and (not isinstance(since, int) or isinstance(since, bool) or since < 0):
            problems.append(f"since_ms must be a whole number of UTC epoch milliseconds, got {since!r}")
        redact = raw.get("redact_suppressed", False)
        if not isinstance(redact, bool):
            problems.append(f"redact_suppressed must be true or false, got {redact!r}")
        tenant, unit, destination = (
            raw.get("tenant", ""),
            raw.get("business_unit", ""),
            raw.get("destination"),
        )
        if problems or schedule is None or retention is None or grace is None:
            # report the field problems the constructor would find too, all at once
            problems += _field_problems(
                tenant, unit, destination, retention, grace, formats_checked, schedule
            )
            raise PolicyError(sorted(set(problems), key=problems.index))
        return cls(tenant, unit, schedule, formats, str(destination), retention, grace, redact, since)

    @classmethod
    def from_json(cls, data: bytes | str) -> ArchivePolicy:
        """The policy of its JSON; :class:`PolicyError` for bad JSON or any invalid field."""
        try:
            raw = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PolicyError([f"not JSON ({exc}): write the policy as a JSON object"]) from None
        return cls.from_dict(raw)


def _read_int(raw: dict[str, Any], name: str, default: int | None, problems: list[str]) -> int | None:
    value = raw.get(name, default)
    if value is None:
        problems.append(f"{name} is missing: give a whole number")
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        problems.append(f"{name} must be a whole number, got {value!r}")
        return None
    return value


def _read_schedule(raw: Any, problems: list[str]) -> Schedule | None:
    hint = 'write {"cron": "0 0 * * *", "time_zone": "Europe/London"} or {"every_seconds": 3600}'
    if not isinstance(raw, dict):
        problems.append(f"schedule must be an object: {hint}")
        return None
    if set(raw) == {"cron", "time_zone"} and all(isinstance(v, str) for v in raw.values()):
        return CronSchedule(raw["cron"], raw["time_zone"])
    if set(raw) == {"every_seconds"}:
        seconds = raw["every_seconds"]
        if isinstance(seconds, int) and not isinstance(seconds, bool):
            return FixedSchedule(seconds)
    if "cron" in raw and "time_zone" not in raw:
        problems.append(f"schedule has a cron expression without time_zone (an IANA name): {hint}")
    else:
        problems.append(f"schedule {raw!r} is neither a cron schedule nor a fixed window: {hint}")
    return None


def _read_formats(raw: Any, problems: list[str]) -> tuple[ArchiveFormat, ...]:
    names = ", ".join(f.value for f in ArchiveFormat)
    if not isinstance(raw, list) or not all(isinstance(f, str) for f in raw):
        problems.append(f"formats must be a list of format names ({names})")
        return ()
    formats = []
    for name in raw:
        try:
            formats.append(ArchiveFormat(name))
        except ValueError:
            problems.append(f"format {name!r} is unknown: choose among {names}")
    return tuple(formats)


def _policy_problems(policy: ArchivePolicy) -> list[str]:
    return (
        _field_problems(
            policy.tenant,
            policy.business_unit,
            policy.destination,
            policy.retention_days,
            policy.grace_seconds,
            policy.formats,
            policy.schedule,
        )
        + ([] if isinstance(policy.redact_suppressed, bool) else ["redact_suppressed must be true or false"])
        + (
            []
            if policy.since_ms is None or (isinstance(policy.since_ms, int) and policy.since_ms >= 0)
            else ["since_ms must be a whole number of UTC epoch milliseconds"]
        )
    )


def _field_problems(
    tenant: Any,
    unit: Any,
    destination: Any,
    retention: int | None,
    grace: int | None,
    formats: tuple[ArchiveFormat, ...] | None,
    schedule: Schedule | None,
) -> list[str]:
    """Problems of the fields; ``formats`` None when they were already reported (unknown names)."""
    problems: list[str] = []
    for name, value in (("tenant", tenant), ("business_unit", unit)):
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{name} must be a non-empty string")
        elif any(ord(c) < 32 or ord(c) == 127 for c in value):
            problems.append(f"{name} {value!r} has control characters: remove them")
    if isinstance(destination, str) or destination is None:
        problems += _destination_problems(destination or "")
    else:
        problems.append("destination must be a string such as s3://bucket/prefix or file:///dir")
    if retention is not None and not 1 <= retention <= MAX_RETENTION_DAYS:
        problems.append(f"retention_days {retention} is out of range: give 1 to {MAX_RETENTION_DAYS} days")
    if grace is not None and not 0 <= grace <= MAX_GRACE_SECONDS:
        problems.append(
            f"grace_seconds {grace} is out of range: give 0 to {MAX_GRACE_SECONDS} (7 days); windows close "
            "that long after their end"
        )
    if formats is None:
        pass
    elif not formats:
        problems.append(f"formats is empty: list one or more of {', '.join(f.value for f in ArchiveFormat)}")
    elif len(set(formats)) != len(formats):
        problems.append("formats lists a format more than once: list each once")
    elif not all(isinstance(f, ArchiveFormat) for f in formats):
        problems.append("formats must be ArchiveFormat values")
    if schedule is not None:
        problems += _schedule_problems(schedule)
    return problems


def _schedule_problems(schedule: Schedule) -> list[str]:
    if isinstance(schedule, FixedSchedule):
        seconds = schedule.every_seconds
        if not MIN_WINDOW_SECONDS <= seconds <= MAX_WINDOW_DAYS * 86400:
            return [
                f"every_seconds {seconds} is out of range: give {MIN_WINDOW_SECONDS} to "
                f"{MAX_WINDOW_DAYS * 86400} ({MAX_WINDOW_DAYS} days)"
            ]
        return []
    problems = []
    try:
        zone = ZoneInfo(schedule.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(
            f"time_zone {schedule.time_zone!r} is not an IANA time zone: write e.g. Europe/London, "
            "America/New_York or UTC"
        )
        zone = ZoneInfo("UTC")
    fields = schedule.expression.split()
    if len(fields) != 5:
        problems.append(
            f"cron {schedule.expression!r} has {len(fields)} fields: write the five standard ones, "
            "minute hour day-of-month month day-of-week (e.g. '0 0 * * *' for daily at midnight)"
        )
        return problems
    reference = datetime(2000, 1, 1, tzinfo=zone)
    try:
        firings = CronSim(schedule.expression, reference)
        first = next(firings)
        gap = next(firings) - first
    except CronSimError as exc:
        problems.append(f"cron {schedule.expression!r} is not valid ({exc}): see crontab(5)")
        return problems
    except StopIteration:  # pragma: no cover - cronsim iterates forever for a valid expression
        problems.append(f"cron {schedule.expression!r} never fires")
        return problems
    if (first - reference).days >= MAX_WINDOW_DAYS or gap.days >= MAX_WINDOW_DAYS:
        problems.append(
            f"cron {schedule.expression!r} fires less than once in {MAX_WINDOW_DAYS} days: choose a schedule "
            "with shorter windows"
        )
    return problems


def policy_id(tenant: str, business_unit: str) -> str:
    """The key of a policy in ``carryover.config.archive``: ``"<tenant>/<business unit>"``, each escaped
    (``%`` as ``%25``, ``/`` as ``%2F``) so that the key names exactly one (tenant, business unit)."""

    def escape(value: str) -> str:
        return value.replace("%", "%25").replace("/", "%2F")

    return f"{escape(tenant)}/{escape(business_unit)}"


# -- windows ------------------------------------------------------------------------------------------


def window_of(policy: ArchivePolicy | Schedule, t_ms: int) -> Window:
    """The window of the policy's schedule that contains ``t_ms`` (UTC epoch ms)."""
    schedule = policy.schedule if isinstance(policy, ArchivePolicy) else policy
    if isinstance(schedule, FixedSchedule):
        length = schedule.every_seconds * 1000
        start = (t_ms // length) * length
        return Window(start, start + length)
    zone = ZoneInfo(schedule.time_zone)
    # firings fall on whole minutes: the latest firing <= t is the latest before the next whole minute
    after_minute_s = (t_ms // 1000 // _MINUTE_S + 1) * _MINUTE_S
    previous = next(
        CronSim(schedule.expression, datetime.fromtimestamp(after_minute_s, tz=zone), reverse=True)
    )
    # In the hour a clock goes back, cronsim's reverse search from the second pass of that hour can return
    # the firing before the one that precedes t (Europe/London, 30 1 * * *, at 01:59 BST on the last Sunday of
    # October: it answers the day before): walk forward to the firing that starts t's window.
    firings = CronSim(schedule.expression, previous)
    start_ms, end_ms = _ms(previous), _ms(next(firings))
    while end_ms <= t_ms:
        start_ms, end_ms = end_ms, _ms(next(firings))
    if start_ms > t_ms:  # pragma: no cover - only with a zone whose offsets are not whole minutes
        raise ValueError(f"schedule {schedule} gives no window around {t_ms}")
    return Window(start_ms, end_ms)


def windows_between(policy: ArchivePolicy | Schedule, start_ms: int, end_ms: int) -> Iterator[Window]:
    """Every window that overlaps ``[start_ms, end_ms)``, in order; the first is ``window_of(start_ms)``."""
    if end_ms <= start_ms:
        return
    schedule = policy.schedule if isinstance(policy, ArchivePolicy) else policy
    window = window_of(schedule, start_ms)
    if isinstance(schedule, FixedSchedule):
        length = window.end_ms - window.start_ms
        while window.start_ms < end_ms:
            yield window
            window = Window(window.end_ms, window.end_ms + length)
        return
    yield window
    zone = ZoneInfo(schedule.time_zone)
    boundary = window.end_ms
    firings = CronSim(schedule.expression, datetime.fromtimestamp(boundary // 1000, tz=zone))
    while boundary < end_ms:
        following = _ms(next(firings))
        yield Window(boundary, following)
        boundary = following


def _ms(moment: datetime) -> int:
    return int(moment.timestamp()) * 1000 + moment.microsecond // 1000
