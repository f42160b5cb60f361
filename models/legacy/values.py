"""Value conversions between the legacy wire forms and the canonical ones (pure).

Canonical forms: user ids are decimal strings, room (stream) and message ids URL-safe base64 without
padding, times epoch milliseconds, roles one of ``MEMBER``, ``OWNER``, ``MODERATOR``.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime

ROLES = ("MEMBER", "OWNER", "MODERATOR")
_STANDARD_B64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_URLSAFE_B64 = re.compile(r"^[A-Za-z0-9_-]+$")
_DECIMAL = re.compile(r"^[0-9]{1,19}$")
MAX_USER_ID = 2**63 - 1
# the legacy backend went live in 2009 and nothing it publishes is dated after 2100
MIN_TIME_MS = 1_230_768_000_000
MAX_TIME_MS = 4_102_444_800_000


class ValueFormatError(ValueError):
    """A legacy value does not have the form its schema says; the message says what was expected."""


def user_id_from_number(value: object) -> str:
    """A numeric (JSON number / int64) user id as its canonical decimal string."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueFormatError(f"expected a numeric user id, got {type(value).__name__}")
    if not 0 < value <= MAX_USER_ID:
        raise ValueFormatError("numeric user id out of range (1 .. 2^63-1)")
    return str(value)


def user_id_from_string(value: object) -> str:
    """A decimal-string user id, checked and without leading zeros."""
    if not isinstance(value, str) or not _DECIMAL.match(value):
        raise ValueFormatError("expected a decimal-string user id")
    return user_id_from_number(int(value))


def _id_bytes_standard(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not _STANDARD_B64.match(value) or len(value) % 4:
        raise ValueFormatError(f"expected a standard base64 {what} (A-Z a-z 0-9 + / with = padding)")
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ValueFormatError(f"expected a standard base64 {what}") from exc
    if not raw:
        raise ValueFormatError(f"empty {what}")
    return raw


def _id_bytes_urlsafe(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not _URLSAFE_B64.match(value) or len(value) % 4 == 1:
        raise ValueFormatError(f"expected a URL-safe unpadded base64 {what} (A-Z a-z 0-9 - _)")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def urlsafe_id(raw: bytes) -> str:
    """Id bytes in the canonical form: URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def standard_id(canonical: str) -> str:
    """A canonical (URL-safe, unpadded) id in the legacy standard base64 form with padding."""
    return base64.b64encode(_id_bytes_urlsafe(canonical, "id")).decode()


def id_from_standard(value: object, what: str = "id") -> str:
    """A standard-base64 legacy id (v1 stream / message ids) in canonical form."""
    return urlsafe_id(_id_bytes_standard(value, what))


def id_from_urlsafe(value: object, what: str = "id") -> str:
    """A URL-safe legacy id (v2 ids), checked and normalized (no padding)."""
    return urlsafe_id(_id_bytes_urlsafe(value, what))


def time_from_millis(value: object) -> int:
    """Epoch milliseconds (number), range-checked."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueFormatError("expected epoch milliseconds as an integer")
    if not MIN_TIME_MS <= value <= MAX_TIME_MS:
        raise ValueFormatError("epoch milliseconds outside 2009..2100 (seconds instead of milliseconds?)")
    return value


def time_from_iso(value: object) -> int:
    """An ISO-8601 timestamp with a zone (``2024-03-01T10:00:00.123Z``) as epoch milliseconds."""
    if not isinstance(value, str) or len(value) > 40:
        raise ValueFormatError("expected an ISO-8601 timestamp string")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError as exc:
        raise ValueFormatError("expected an ISO-8601 timestamp like 2024-03-01T10:00:00.123Z") from exc
    if moment.tzinfo is None:
        raise ValueFormatError("ISO-8601 timestamp without a time zone")
    return time_from_millis(round(moment.timestamp() * 1000))


def iso_from_millis(epoch_ms: int) -> str:
    """Epoch milliseconds as the legacy v2 ISO-8601 form, e.g. ``2024-03-01T10:00:00.123Z``."""
    moment = datetime.fromtimestamp(epoch_ms // 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def role_from_name(value: object) -> str:
    """A legacy role name (any case) as the canonical role name."""
    if not isinstance(value, str) or value.upper() not in ROLES:
        raise ValueFormatError(f"expected a role, one of {', '.join(ROLES)}")
    return value.upper()


def text(value: object) -> str:
    """A free-text field: must be a string."""
    if not isinstance(value, str):
        raise ValueFormatError(f"expected a string, got {type(value).__name__}")
    return value


def flag(value: object) -> bool:
    """A boolean field: JSON true/false only."""
    if not isinstance(value, bool):
        raise ValueFormatError(f"expected true or false, got {type(value).__name__}")
    return value
