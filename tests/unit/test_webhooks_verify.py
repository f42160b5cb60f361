"""Webhook delivery verification: GitHub, Standard Webhooks (reference vectors and the reference library as
an oracle), the legacy shared secret, statuses, bodies, replays and rate limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from app.webhooks.hooks import AuthScheme, HookDefinition, HookSecret
from app.webhooks.ratelimit import HookRateLimiter
from app.webhooks.verify import (
    STATUS,
    Reason,
    ReplayGuard,
    Verdict,
    admit_delivery,
    parse_body,
    verify_delivery,
)

GITHUB_DOC_SECRET = "It's a Secret to Everybody"
GITHUB_DOC_PAYLOAD = b"Hello, World!"
GITHUB_DOC_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

# The reference library's test vectors (standard-webhooks, libraries/python/tests).
SW_SECRET = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_PAYLOAD = b'{"test": 2432232314}'
SW_TIMESTAMP = 1614265330
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
SW_BAD_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="
SW_OTHER_SIGNATURE = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="


def hook(scheme: AuthScheme, *secrets: str, **kwargs: Any) -> HookDefinition:
    return HookDefinition(
        hook_id="hook-1",
        tenant="acme",
        conversation_id="room-1",
        bot_user_id="9001",
        auth_scheme=scheme,
        secrets=tuple(HookSecret(s) for s in secrets),
        template_name="generic_json",
        **kwargs,
    )


GITHUB = hook(AuthScheme.GITHUB, GITHUB_DOC_SECRET)
STANDARD = hook(AuthScheme.STANDARD, "whsec_" + SW_SECRET)
SHARED = hook(AuthScheme.SHARED_SECRET, "legacy-shared-secret", secret_header="X-Legacy-Token")


def github_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def standard_headers(
    body: bytes, timestamp: int, secret: str = SW_SECRET, msg_id: str = SW_MSG_ID
) -> dict[str, str]:
    signer = Webhook(secret)
    signature = signer.sign(msg_id, datetime.fromtimestamp(timestamp, tz=UTC), body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


# -- GitHub ---------------------------------------------------------------------------------------------


def test_github_documented_example_verifies() -> None:
    assert github_signature(GITHUB_DOC_SECRET, GITHUB_DOC_PAYLOAD) == GITHUB_DOC_SIGNATURE
    # the documented payload is not JSON: the signature passes, then the body is refused as 400, not 401
    verdict = verify_delivery(
        GITHUB, {"X-Hub-Signature-256": GITHUB_DOC_SIGNATURE}, GITHUB_DOC_PAYLOAD, now=0
    )
    assert (verdict.status, verdict.reason) == (400, Reason.BAD_BODY)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"X-Hub-Signature-256": github_signature(GITHUB_DOC_SECRET, b'{"zen": "x"}')}, Reason.ACCEPTED),
        (
            {"x-hub-signature-256": github_signature(GITHUB_DOC_SECRET, b'{"zen": "x"}').upper()},
            Reason.ACCEPTED,
        ),
        ({}, Reason.MISSING_SIGNATURE),
        ({"X-Hub-Signature-256": ""}, Reason.MISSING_SIGNATURE),
        ({"X-Hub-Signature-256": github_signature("another secret!", b'{"zen": "x"}')}, Reason.BAD_SIGNATURE),
        ({"X-Hub-Signature-256": github_signature(GITHUB_DOC_SECRET, b'{"zen": "y"}')}, Reason.BAD_SIGNATURE),
        ({"X-Hub-Signature-256": "sha1=" + "0" * 40}, Reason.BAD_SIGNATURE),
        ({"X-Hub-Signature-256": "sha256=zz"}, Reason.BAD_SIGNATURE),
        ({"X-Hub-Signature-256": "sha256=é"}, Reason.BAD_SIGNATURE),
    ],
)
def test_github_signatures(headers: dict[str, str], reason: Reason) -> None:
    verdict = verify_delivery(GITHUB, {"Content-Type": "application/json", **headers}, b'{"zen": "x"}', now=0)
    assert verdict.reason is reason
    assert verdict.status == (202 if reason is Reason.ACCEPTED else 401)


def test_github_accepted_delivery_carries_event_id_and_a_replay_key_from_the_signature() -> None:
    body = b'{"zen": "Keep it logically awesome."}'
    headers = {
        "X-Hub-Signature-256": github_signature(GITHUB_DOC_SECRET, body),
        "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "Content-Type": "application/json",
    }
    verdict = verify_delivery(GITHUB, headers, body, now=0)
    assert verdict.to_process and verdict.payload == {"zen": "Keep it logically awesome."}
    assert verdict.event == "ping"
    assert verdict.delivery_id == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert verdict.replay_key == "hook-1/" + headers["X-Hub-Signature-256"]
    assert "x-hub-signature-256" not in verdict.headers and verdict.headers["x-github-event"] == "ping"


def test_rotation_both_secrets_verify_until_the_old_one_is_retired() -> None:
    body = b"{}"
    rotated = GITHUB.with_new_secret("the new secret 2")
    for secret in (GITHUB_DOC_SECRET, "the new secret 2"):
        headers = {"X-Hub-Signature-256": github_signature(secret, body)}
        assert verify_delivery(rotated, headers, body, now=0).to_process
    retired = rotated.with_only_newest_secret()
    old = {"X-Hub-Signature-256": github_signature(GITHUB_DOC_SECRET, body)}
    assert verify_delivery(retired, old, body, now=0).reason is Reason.BAD_SIGNATURE


# -- Standard Webhooks ----------------------------------------------------------------------------------


def test_standard_reference_sign_vector() -> None:
    headers = {
        "webhook-id": SW_MSG_ID,
        "webhook-timestamp": str(SW_TIMESTAMP),
        "webhook-signature": SW_SIGNATURE,
    }
    verdict = verify_delivery(STANDARD, headers, SW_PAYLOAD, now=SW_TIMESTAMP)
    assert verdict.to_process and verdict.payload == {"test": 2432232314}
    assert verdict.delivery_id == SW_MSG_ID and verdict.replay_key == "hook-1/" + SW_MSG_ID
    # the secret may be given without its whsec_ prefix
    unprefixed = hook(AuthScheme.STANDARD, SW_SECRET)
    assert verify_delivery(unprefixed, headers, SW_PAYLOAD, now=SW_TIMESTAMP).to_process


def ref_headers(**changes: str | None) -> dict[str, str]:
    headers = {
        "webhook-id": SW_MSG_ID,
        "webhook-timestamp": str(SW_TIMESTAMP),
        "webhook-signature": SW_SIGNATURE,
    }
    for name, value in changes.items():
        key = name.replace("_", "-")
        if value is None:
            del headers[key]
        else:
            headers[key] = value
    return headers


REFERENCE_CASES = [
    ("valid", ref_headers(), 0, Reason.ACCEPTED),
    ("missing id", ref_headers(webhook_id=None), 0, Reason.MISSING_SIGNATURE),
    ("missing timestamp", ref_headers(webhook_timestamp=None), 0, Reason.MISSING_SIGNATURE),
    ("missing signature", ref_headers(webhook_signature=None), 0, Reason.MISSING_SIGNATURE),
    ("invalid timestamp", ref_headers(webhook_timestamp="hello"), 0, Reason.BAD_TIMESTAMP),
    ("invalid signature", ref_headers(webhook_signature=SW_BAD_SIGNATURE), 0, Reason.BAD_SIGNATURE),
    (
        "several signatures, one valid",
        ref_headers(
            webhook_signature=" ".join(
                [SW_OTHER_SIGNATURE, "v2," + SW_OTHER_SIGNATURE[3:], SW_SIGNATURE, SW_OTHER_SIGNATURE]
            )
        ),
        0,
        Reason.ACCEPTED,
    ),
    (
        "only other versions",
        ref_headers(webhook_signature="v1a," + SW_SIGNATURE[3:]),
        0,
        Reason.BAD_SIGNATURE,
    ),
    ("old by tolerance + 1 s", ref_headers(), 301, Reason.STALE_TIMESTAMP),
    ("new by tolerance + 1 s", ref_headers(), -301, Reason.STALE_TIMESTAMP),
    ("old by exactly the tolerance", ref_headers(), 300, Reason.ACCEPTED),
    ("new by exactly the tolerance", ref_headers(), -300, Reason.ACCEPTED),
]


@pytest.mark.parametrize(("case", "headers", "clock_offset", "reason"), REFERENCE_CASES, ids=lambda c: str(c))
def test_standard_reference_cases(
    case: str, headers: dict[str, str], clock_offset: int, reason: Reason
) -> None:
    verdict = verify_delivery(STANDARD, headers, SW_PAYLOAD, now=SW_TIMESTAMP + clock_offset)
    assert verdict.reason is reason, case
    assert verdict.status == STATUS[reason]


@pytest.mark.parametrize(("case", "headers", "clock_offset", "reason"), REFERENCE_CASES, ids=lambda c: str(c))
def test_standard_agrees_with_the_reference_library(
    case: str, headers: dict[str, str], clock_offset: int, reason: Reason
) -> None:
    """The reference library reads the wall clock: the same case re-signed at the present time."""
    now = int(datetime.now(tz=UTC).timestamp())
    timestamp = now - clock_offset
    signed = dict(headers)
    if "webhook-timestamp" in signed and signed["webhook-timestamp"] == str(SW_TIMESTAMP):
        signed["webhook-timestamp"] = str(timestamp)
        good = standard_headers(SW_PAYLOAD, timestamp)["webhook-signature"]
        signed["webhook-signature"] = signed.get("webhook-signature", "").replace(SW_SIGNATURE, good)
        if "webhook-signature" not in headers:
            del signed["webhook-signature"]
    try:
        Webhook(SW_SECRET).verify(SW_PAYLOAD, signed)
        reference_accepts = True
    except (WebhookVerificationError, ValueError):
        reference_accepts = False
    ours = verify_delivery(STANDARD, signed, SW_PAYLOAD, now=now)
    if abs(clock_offset) == 300:
        return  # exactly at the edge: the reference library's clock moves on between our read and its own
    assert ours.to_process == reference_accepts, case


def test_standard_body_need_not_be_utf8_and_signed_bytes_are_raw() -> None:
    body = b'{"a": "\xff"}'
    key = base64.b64decode(SW_SECRET)
    signature = base64.b64encode(hmac.new(key, b"m1.100." + body, hashlib.sha256).digest()).decode()
    headers = {"webhook-id": "m1", "webhook-timestamp": "100", "webhook-signature": "v1," + signature}
    verdict = verify_delivery(STANDARD, headers, body, now=100)
    assert verdict.reason is Reason.BAD_BODY  # verified (not 401), then the body is not JSON text


@pytest.mark.parametrize(
    "signature_header",
    ["v1", "v1,", "v1,!!!", "garbage", "v1,a,b", " ", "v1," + "A" * 10_000],
)
def test_standard_malformed_signatures_are_401_not_errors(signature_header: str) -> None:
    headers = ref_headers(webhook_signature=signature_header)
    assert verify_delivery(STANDARD, headers, SW_PAYLOAD, now=SW_TIMESTAMP).status == 401


# -- shared secret --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"X-Legacy-Token": "legacy-shared-secret"}, Reason.ACCEPTED),
        ({"x-legacy-token": "legacy-shared-secret"}, Reason.ACCEPTED),
        ({"X-Legacy-Token": "legacy-shared-secreT"}, Reason.BAD_SIGNATURE),
        ({"X-Legacy-Token": "legacy-shared-secret-and-more"}, Reason.BAD_SIGNATURE),
        ({"X-Legacy-Token": ""}, Reason.MISSING_SIGNATURE),
        ({"X-Webhook-Secret": "legacy-shared-secret"}, Reason.MISSING_SIGNATURE),
    ],
)
def test_shared_secret_header(headers: dict[str, str], reason: Reason) -> None:
    verdict = verify_delivery(SHARED, headers, b'{"text": "disk full"}', now=0)
    assert verdict.reason is reason
    if reason is Reason.ACCEPTED:
        assert verdict.replay_key == ""  # the legacy scheme offers no replay protection
        assert verdict.delivery_id == "sha256:" + hashlib.sha256(b'{"text": "disk full"}').hexdigest()


# -- statuses before verification, bodies ---------------------------------------------------------------


def test_unknown_disabled_and_too_large() -> None:
    body = b"{}"
    signed = {"X-Hub-Signature-256": github_signature(GITHUB_DOC_SECRET, body)}
    assert verify_delivery(None, signed, body, now=0).status == 404
    assert verify_delivery(GITHUB.with_enabled(False), signed, body, now=0).status == 410
    big = b'{"a": "' + b"x" * 100 + b'"}'
    big_signed = {"X-Hub-Signature-256": github_signature(GITHUB_DOC_SECRET, big)}
    assert verify_delivery(GITHUB, big_signed, big, now=0, max_body_bytes=100).status == 413
    assert verify_delivery(GITHUB, big_signed, big, now=0, max_body_bytes=len(big)).status == 202


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/json", b'{"a": 1}', {"a": 1}),
        ("application/json; charset=utf-8", b'{"a": [1, 2]}', {"a": [1, 2]}),
        ("", b'{"a": 1}', {"a": 1}),
        ("application/vnd.api+json", b'{"a": 1}', {"a": 1}),
        ("application/x-www-form-urlencoded", b"payload=%7B%22zen%22%3A%22hi%22%7D", {"zen": "hi"}),
        (
            "application/x-www-form-urlencoded",
            b"text=disk+full&tag=a&tag=b",
            {"text": "disk full", "tag": ["a", "b"]},
        ),
        ("application/x-www-form-urlencoded", b"", {}),
    ],
)
def test_parse_body(content_type: str, body: bytes, expected: dict[str, Any]) -> None:
    assert parse_body(content_type, body) == expected


@pytest.mark.parametrize(
    ("content_type", "body", "reason"),
    [
        ("application/json", b"[1, 2]", Reason.BAD_BODY),
        ("application/json", b"{not json", Reason.BAD_BODY),
        ("application/json", b"", Reason.BAD_BODY),
        ("application/json", b"[" * 100_000, Reason.BAD_BODY),
        ("application/x-www-form-urlencoded", b"payload=%7Bnot", Reason.BAD_BODY),
        ("application/x-www-form-urlencoded", b"payload=%FF", Reason.BAD_BODY),
        ("text/plain", b"hello", Reason.UNSUPPORTED_MEDIA_TYPE),
        ("multipart/form-data; boundary=x", b"--x--", Reason.UNSUPPORTED_MEDIA_TYPE),
    ],
)
def test_bad_bodies_are_refused_after_verification(content_type: str, body: bytes, reason: Reason) -> None:
    headers = {"Content-Type": content_type, "X-Hub-Signature-256": github_signature(GITHUB_DOC_SECRET, body)}
    verdict = verify_delivery(GITHUB, headers, body, now=0)
    assert verdict.reason is reason
    assert "not" not in verdict.detail or "{not" not in verdict.detail  # no body text in the detail
    unsigned = verify_delivery(GITHUB, {"Content-Type": content_type}, body, now=0)
    assert unsigned.reason is Reason.MISSING_SIGNATURE  # never parsed before it is verified


def test_details_never_hold_secrets() -> None:
    for verdict in (
        verify_delivery(SHARED, {"X-Legacy-Token": "wrong-secret-xyz"}, b"{}", now=0),
        verify_delivery(GITHUB, {"X-Hub-Signature-256": "sha256=" + "0" * 64}, b"{}", now=0),
    ):
        assert "legacy-shared-secret" not in repr(verdict) and GITHUB_DOC_SECRET not in repr(verdict)
        assert "wrong-secret-xyz" not in verdict.detail


# -- replays and rate limits ----------------------------------------------------------------------------


def test_replay_guard_window_release_and_bounded_memory() -> None:
    guard = ReplayGuard(window_seconds=600, max_keys=3)
    assert guard.claim("a", now=0) and not guard.claim("a", now=599)
    assert guard.claim("a", now=600)  # window over: a new delivery
    guard.release("a")
    assert guard.claim("a", now=601)
    assert guard.claim("", now=601) and guard.claim("", now=601)  # no key, never a replay
    for key in ("b", "c", "d"):
        assert guard.claim(key, now=602)
    assert len(guard) == 3 and guard.evicted == 1
    assert guard.claim("a", now=603)  # evicted before its window ended: counted, processed again
    with pytest.raises(ValueError):
        ReplayGuard(window_seconds=60)


def standard_delivery(msg_id: str, now: int) -> Verdict:
    headers = standard_headers(SW_PAYLOAD, now, msg_id=msg_id)
    return verify_delivery(STANDARD, headers, SW_PAYLOAD, now=now)


def test_admit_replay_then_rate_limit() -> None:
    limited = hook(AuthScheme.STANDARD, "whsec_" + SW_SECRET, rate_per_second=1.0, rate_burst=2)
    guard, limiter = ReplayGuard(), HookRateLimiter()
    now = 1_700_000_000

    def admit(msg_id: str, at: float) -> Verdict:
        verdict = verify_delivery(
            limited, standard_headers(SW_PAYLOAD, now, msg_id=msg_id), SW_PAYLOAD, now=now
        )
        return admit_delivery(verdict, limited, guard=guard, limiter=limiter, now=now, monotonic_now=at)

    assert admit("m1", 0.0).reason is Reason.ACCEPTED
    replay = admit("m1", 0.0)
    assert (replay.status, replay.reason, replay.to_process) == (202, Reason.REPLAY, False)
    assert admit("m2", 0.0).reason is Reason.ACCEPTED  # the replay spent no token
    refused = admit("m3", 0.0)
    assert (refused.status, refused.response_headers()) == (429, {"Retry-After": "1"})
    assert admit("m3", 1.0).reason is Reason.ACCEPTED  # released on 429: the retry is not a replay
    assert admit("m3", 1.0).reason is Reason.REPLAY
    # refused verdicts pass unchanged
    bad = verify_delivery(limited, {}, SW_PAYLOAD, now=now)
    assert admit_delivery(bad, limited, guard=guard, limiter=limiter, now=now, monotonic_now=2.0) is bad


def test_one_hooks_flood_does_not_touch_another_hooks_budget() -> None:
    limiter = HookRateLimiter()
    noisy = [limiter.take("noisy", 1.0, 5, now=0.0).allowed for _ in range(100)]
    assert noisy.count(True) == 5
    assert all(limiter.take("quiet", 1.0, 5, now=0.0).allowed for _ in range(5))


def test_verdict_payload_is_plain_json_data() -> None:
    verdict = standard_delivery("m9", SW_TIMESTAMP)
    assert json.loads(json.dumps(verdict.payload)) == {"test": 2432232314}
