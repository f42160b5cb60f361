"""Whether the receiver accepts one webhook delivery, and what it answers (pure; the clock is passed in).

:func:`verify_delivery` checks one request against its hook, in this order, and returns a :class:`Verdict`
with the HTTP status the receiver answers and a :class:`Reason`:

=====================================  ======  ===================================================
case                                   status  reason
=====================================  ======  ===================================================
no such hook                           404     ``unknown_hook``
hook disabled                          410     ``disabled``
body over ``max_body_bytes``           413     ``too_large``
signature / secret header missing      401     ``missing_signature``
signature or secret does not match     401     ``bad_signature``
Standard Webhooks timestamp not a      401     ``bad_timestamp``
number
timestamp more than 5 minutes off      401     ``stale_timestamp``
content type not JSON or form          415     ``unsupported_media_type``
body not a JSON object (or form)       400     ``bad_body``
verified                               202     ``accepted``
=====================================  ======  ===================================================

Verification always comes before parsing (an unauthenticated body is never parsed) and every comparison
is :func:`hmac.compare_digest`, over each of the hook's active secrets (two while one is rotated):

* ``github``: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``.
* ``standard``: Standard Webhooks: HMAC-SHA256 of ``<webhook-id>.<webhook-timestamp>.<body>`` with the
  base64 key of the ``whsec_`` secret; ``webhook-signature`` holds space-separated ``v1,<base64>``
  signatures (several during the sender's rotation; other versions are skipped); the timestamp (whole
  seconds) must be within :data:`TIMESTAMP_TOLERANCE_SECONDS` of ``now`` both ways. Checked against the
  reference ``standardwebhooks`` library (tests); unlike it, a malformed header is a 401, never an
  exception, and a body need not be UTF-8.
* ``shared_secret``: the hook's ``secret_header`` holds the secret itself; compared as SHA-256 digests, so
  that neither content nor length leaks through timing.

Bodies: ``application/json`` (or any ``+json`` type, or no content type) must hold a JSON object;
``application/x-www-form-urlencoded`` is GitHub's form (its ``payload`` field holds the JSON) or plain
fields (a field given once is a string, given more than once a list of strings).

Replays (:class:`ReplayGuard`, :func:`admit_delivery`): a delivery carries a replay key that a replay
cannot change: Standard Webhooks' signed ``webhook-id``; for GitHub the signature itself (GitHub signs no
timestamp and not ``X-GitHub-Delivery``, so an attacker could change that header, not the body; GitHub's
own redelivery sends the same body, hence the same signature). The legacy shared-secret scheme has no
replay key (anyone who saw one request knows the secret): its deliveries are never held as replays.
A replay within the guard's window is answered 202 ``replay`` and not processed again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs

from app.webhooks.hooks import AuthScheme, HookDefinition
from app.webhooks.ratelimit import HookRateLimiter

DEFAULT_MAX_BODY_BYTES = 1_048_576
TIMESTAMP_TOLERANCE_SECONDS = 300
"""Standard Webhooks: how far a delivery's timestamp may be from the receiver's clock, either way."""
GITHUB_SIGNATURE_HEADER = "x-hub-signature-256"
GITHUB_DELIVERY_HEADER = "x-github-delivery"
GITHUB_EVENT_HEADER = "x-github-event"
KEPT_HEADERS = frozenset(
    {
        "content-type",
        "user-agent",
        GITHUB_DELIVERY_HEADER,
        GITHUB_EVENT_HEADER,
        "x-github-hook-id",
        "x-github-hook-installation-target-type",
        "webhook-id",
        "webhook-timestamp",
        "x-atlassian-webhook-identifier",
        "x-atlassian-webhook-flow",
    }
)
"""Request headers a verified delivery keeps (for templates and history); never a signature or secret."""
MAX_SIGNATURES = 16
"""Most ``webhook-signature`` entries looked at (a sender rotating has two or three)."""

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HEX_SIGNATURE = re.compile(r"sha256=[0-9a-f]{64}", re.IGNORECASE)


class Reason(StrEnum):
    """Why a delivery was accepted or refused (its status is :data:`STATUS`)."""

    ACCEPTED = "accepted"
    REPLAY = "replay"
    UNKNOWN_HOOK = "unknown_hook"
    DISABLED = "disabled"
    TOO_LARGE = "too_large"
    MISSING_SIGNATURE = "missing_signature"
    BAD_SIGNATURE = "bad_signature"
    BAD_TIMESTAMP = "bad_timestamp"
    STALE_TIMESTAMP = "stale_timestamp"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    BAD_BODY = "bad_body"
    RATE_LIMITED = "rate_limited"


STATUS: dict[Reason, int] = {
    Reason.ACCEPTED: 202,
    Reason.REPLAY: 202,
    Reason.UNKNOWN_HOOK: 404,
    Reason.DISABLED: 410,
    Reason.TOO_LARGE: 413,
    Reason.MISSING_SIGNATURE: 401,
    Reason.BAD_SIGNATURE: 401,
    Reason.BAD_TIMESTAMP: 401,
    Reason.STALE_TIMESTAMP: 401,
    Reason.UNSUPPORTED_MEDIA_TYPE: 415,
    Reason.BAD_BODY: 400,
    Reason.RATE_LIMITED: 429,
}
"""The HTTP status the receiver answers for each reason."""


@dataclass(frozen=True)
class Verdict:
    """What the receiver does with one delivery.

    ``detail`` is for the hook's delivery history and logs: it never holds a secret, a signature or body
    text. When accepted, ``payload`` is the parsed body, ``event`` the event type (GitHub's
    ``X-GitHub-Event``, a Standard Webhooks payload's ``type``; ``""`` if unknown), ``delivery_id`` the
    sender's id of the delivery (``X-GitHub-Delivery`` / ``webhook-id``, else ``sha256:<hex of the body>``)
    and ``replay_key`` what :class:`ReplayGuard` remembers (``""``: none).
    """

    reason: Reason
    detail: str = ""
    payload: dict[str, Any] | None = None
    event: str = ""
    delivery_id: str = ""
    replay_key: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: str = ""
    """``Retry-After`` value of a 429, whole seconds."""

    @property
    def status(self) -> int:
        """The HTTP status to answer."""
        return STATUS[self.reason]

    @property
    def accepted(self) -> bool:
        """Answered 202 (a replay included)."""
        return self.status == 202

    @property
    def to_process(self) -> bool:
        """Accepted and not a replay: the receiver writes it to ``webhooks.deliveries.v1``."""
        return self.reason is Reason.ACCEPTED

    def response_headers(self) -> dict[str, str]:
        """Headers of the answer (``Retry-After`` for a 429)."""
        return {"Retry-After": self.retry_after} if self.retry_after else {}


def _refused(reason: Reason, detail: str) -> Verdict:
    return Verdict(reason, detail)


def verify_delivery(
    hook: HookDefinition | None,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Verdict:
    """The verdict on one delivery to ``hook`` (None: no such hook), ``now`` in seconds since the epoch.

    ``headers`` are the request's (any case); ``body`` its raw bytes, which the receiver reads up to
    ``max_body_bytes`` + 1 (or refuses at once by ``Content-Length``).
    """
    if hook is None:
        return _refused(Reason.UNKNOWN_HOOK, "no such hook")
    if not hook.enabled:
        return _refused(Reason.DISABLED, "the hook is disabled")
    if len(body) > max_body_bytes:
        return _refused(Reason.TOO_LARGE, f"body over {max_body_bytes} bytes")
    lower = {name.lower(): value for name, value in headers.items()}
    if hook.auth_scheme is AuthScheme.GITHUB:
        refusal, replay_key = _verify_github(hook, lower, body)
        delivery_id = lower.get(GITHUB_DELIVERY_HEADER, "")
    elif hook.auth_scheme is AuthScheme.STANDARD:
        refusal, replay_key = _verify_standard(hook, lower, body, now)
        delivery_id = lower.get("webhook-id", "")
    else:
        refusal, replay_key = _verify_shared_secret(hook, lower), ""
        delivery_id = ""
    if refusal is not None:
        return refusal
    try:
        payload = parse_body(lower.get("content-type", ""), body)
    except UnsupportedMediaType as exc:
        return _refused(Reason.UNSUPPORTED_MEDIA_TYPE, str(exc))
    except ValueError as exc:
        return _refused(Reason.BAD_BODY, str(exc))
    event = lower.get(GITHUB_EVENT_HEADER, "") if hook.auth_scheme is AuthScheme.GITHUB else ""
    if not event and isinstance(payload.get("type"), str):
        event = payload["type"][:200]
    return Verdict(
        Reason.ACCEPTED,
        "verified",
        payload=payload,
        event=event,
        delivery_id=delivery_id[:200] or "sha256:" + hashlib.sha256(body).hexdigest(),
        replay_key=f"{hook.hook_id}/{replay_key}" if replay_key else "",
        headers={name: value[:500] for name, value in lower.items() if name in KEPT_HEADERS},
    )


def _verify_github(hook: HookDefinition, headers: dict[str, str], body: bytes) -> tuple[Verdict | None, str]:
    given = headers.get(GITHUB_SIGNATURE_HEADER, "").strip()
    if not given:
        return _refused(Reason.MISSING_SIGNATURE, "no X-Hub-Signature-256 header"), ""
    given_bytes = given.lower().encode("ascii", "replace")
    matched = False
    for secret in hook.secrets:
        expected = b"sha256=" + hmac.new(secret.value.encode(), body, hashlib.sha256).hexdigest().encode()
        matched |= hmac.compare_digest(expected, given_bytes)
    if not matched or not _HEX_SIGNATURE.fullmatch(given):
        return _refused(Reason.BAD_SIGNATURE, "X-Hub-Signature-256 matches no active secret"), ""
    return None, given.lower()


def _verify_standard(
    hook: HookDefinition, headers: dict[str, str], body: bytes, now: float
) -> tuple[Verdict | None, str]:
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "").strip()
    signatures = headers.get("webhook-signature", "")
    if not (msg_id and timestamp and signatures.strip()):
        return _refused(
            Reason.MISSING_SIGNATURE, "webhook-id, webhook-timestamp or webhook-signature missing"
        ), ""
    if not _TIMESTAMP.fullmatch(timestamp):
        return _refused(Reason.BAD_TIMESTAMP, "webhook-timestamp is not whole seconds"), ""
    if abs(int(timestamp) - now) > TIMESTAMP_TOLERANCE_SECONDS:
        direction = "old" if int(timestamp) < now else "new"
        return _refused(
            Reason.STALE_TIMESTAMP,
            f"webhook-timestamp too {direction} (tolerance {TIMESTAMP_TOLERANCE_SECONDS} s)",
        ), ""
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    given = [
        entry.split(",", 1)[1].encode("ascii", "replace")
        for entry in signatures.split()[:MAX_SIGNATURES]
        if entry.startswith("v1,")
    ]
    matched = False
    for secret in hook.secrets:
        expected = _standard_signature(secret.standard_key(), signed)
        for signature in given:
            matched |= hmac.compare_digest(expected, signature)
    if not matched:
        return _refused(
            Reason.BAD_SIGNATURE, "no v1 signature in webhook-signature matches an active secret"
        ), ""
    return None, msg_id


def _standard_signature(key: bytes, signed: bytes) -> bytes:
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())


def _verify_shared_secret(hook: HookDefinition, headers: dict[str, str]) -> Verdict | None:
    given = headers.get(hook.secret_header.lower())
    if not given:
        return _refused(Reason.MISSING_SIGNATURE, f"no {hook.secret_header} header")
    given_digest = hashlib.sha256(given.encode("utf-8", "surrogateescape")).digest()
    matched = False
    for secret in hook.secrets:
        matched |= hmac.compare_digest(hashlib.sha256(secret.value.encode()).digest(), given_digest)
    if not matched:
        return _refused(Reason.BAD_SIGNATURE, f"{hook.secret_header} matches no active secret")
    return None


class UnsupportedMediaType(ValueError):
    """A body whose content type is neither JSON nor form-encoded."""


def parse_body(content_type: str, body: bytes) -> dict[str, Any]:
    """The delivery's body as a dict (see the module doc); :class:`UnsupportedMediaType` or ValueError
    (whose message holds no body text)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        try:
            fields = parse_qs(
                body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=1000
            )
        except (UnicodeDecodeError, ValueError):
            raise ValueError("form body is not UTF-8 form fields") from None
        if list(fields) == ["payload"] and len(fields["payload"]) == 1:
            return _json_object(fields["payload"][0].encode("utf-8"), "form field payload")
        return {name: values[0] if len(values) == 1 else values for name, values in fields.items()}
    if media_type in ("", "application/json", "text/json") or media_type.endswith("+json"):
        return _json_object(body, "body")
    raise UnsupportedMediaType(f"content type {media_type[:100]!r} is neither JSON nor form-encoded")


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        position = f" at character {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ValueError(f"{what} is not JSON{position}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{what} is JSON but not an object")
    return value


class ReplayGuard:
    """Replay keys seen within ``window_seconds``, at most ``max_keys`` of them (oldest forgotten first).

    :meth:`claim` before writing a delivery; :meth:`release` when the write failed or the delivery was
    refused after all (rate limit), so that the sender's retry is not taken for a replay.

    Size it as (sum of the hooks' rates) x window: past ``max_keys`` a key is forgotten before its window
    ends (``evicted`` counts them) and its replay would be processed again. The window must be at least
    twice :data:`TIMESTAMP_TOLERANCE_SECONDS` for Standard Webhooks (a timestamp 5 minutes ahead stays
    valid for 10); GitHub signs no timestamp, so a longer window protects its hooks longer. One guard
    serves one worker: a replay reaching another worker is caught only by the fan-in's own de-duplication.
    """

    def __init__(self, window_seconds: float = 3600.0, max_keys: int = 200_000) -> None:
        if window_seconds < 2 * TIMESTAMP_TOLERANCE_SECONDS:
            raise ValueError(f"window_seconds must be at least {2 * TIMESTAMP_TOLERANCE_SECONDS}")
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.window_seconds = window_seconds
        self.max_keys = max_keys
        self.evicted = 0
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def claim(self, replay_key: str, now: float) -> bool:
        """True the first time ``replay_key`` is seen within the window (it is remembered); False for a
        replay. An empty key (no replay protection) is always claimed and never remembered."""
        if not replay_key:
            return True
        self._expire(now)
        if replay_key in self._expiry:
            return False
        self._expiry[replay_key] = now + self.window_seconds
        while len(self._expiry) > self.max_keys:
            self._expiry.popitem(last=False)
            self.evicted += 1
        return True

    def release(self, replay_key: str) -> None:
        """Forget ``replay_key`` (its delivery was not written after all)."""
        self._expiry.pop(replay_key, None)

    def _expire(self, now: float) -> None:
        while self._expiry:
            key, expires_at = next(iter(self._expiry.items()))
            if expires_at > now:
                return
            del self._expiry[key]


def admit_delivery(
    verdict: Verdict,
    hook: HookDefinition | None,
    *,
    guard: ReplayGuard,
    limiter: HookRateLimiter,
    now: float,
    monotonic_now: float,
) -> Verdict:
    """A verified delivery checked for replay, then against its hook's rate.

    A replay is answered 202 ``replay`` without spending a token; a delivery over the hook's rate is
    answered 429 with ``Retry-After`` and its replay key released. Refused verdicts pass unchanged. The
    receiver writes a delivery whose verdict :attr:`Verdict.to_process`, then answers; if the write fails
    it calls ``guard.release(verdict.replay_key)``.
    """
    if not verdict.to_process or hook is None:
        return verdict
    if not guard.claim(verdict.replay_key, now):
        return Verdict(
            Reason.REPLAY,
            "already accepted within the replay window",
            delivery_id=verdict.delivery_id,
            replay_key=verdict.replay_key,
        )
    decision = limiter.take(hook.hook_id, hook.rate_per_second, hook.rate_burst, monotonic_now)
    if not decision.allowed:
        guard.release(verdict.replay_key)
        return Verdict(
            Reason.RATE_LIMITED,
            f"over the hook's rate ({hook.rate_per_second:g}/s, burst {hook.rate_burst})",
            delivery_id=verdict.delivery_id,
            retry_after=decision.retry_after_header,
        )
    return verdict
