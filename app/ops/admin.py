"""The admin token: what guards every view that reveals data or changes anything (pure check).

A request is let through when its ``Authorization`` header is ``Bearer <CARRYOVER_ADMIN_TOKEN>``, compared
in constant time. With no token configured the guarded views answer 503 and say how to set one, rather
than being open. The token never appears in an answer, a log line or the settings' repr.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused: HTTP status, a message with the fix, and extra response headers."""

    status: int
    message: str
    headers: tuple[tuple[str, str], ...] = ()


def admin_refusal(configured_token: str, authorization: str | None) -> Refusal | None:
    """None when ``authorization`` carries the configured token, else the :class:`Refusal` to answer."""
    if not configured_token:
        return Refusal(503, "admin views are off: set CARRYOVER_ADMIN_TOKEN on every worker to turn them on")
    scheme, _, given = (authorization or "").partition(" ")
    challenge = (("WWW-Authenticate", 'Bearer realm="carryover"'),)
    if scheme.lower() != "bearer" or not given.strip():
        return Refusal(
            401, "missing admin token: send `Authorization: Bearer <CARRYOVER_ADMIN_TOKEN>`", challenge
        )
    if not hmac.compare_digest(given.strip().encode(), configured_token.encode()):
        return Refusal(401, "wrong admin token", challenge)
    return None
