"""The webhook receiver and the hooks' admin API on the worker's web server (thin; decisions in the core).

Receiver, open (the signature is the guard): ``POST /hooks/{hook_id}``. The hook comes from this worker's
replica of ``carryover.config.webhooks``; :func:`app.webhooks.verify.verify_delivery` and
:func:`app.webhooks.verify.admit_delivery` decide. 503 with ``Retry-After`` until the replica has read
every hook; unknown 404, disabled 410, body over ``CARRYOVER_WEBHOOK_MAX_BODY_BYTES`` 413 (by
``Content-Length`` before reading, or while reading), missing or bad signature or stale timestamp 401,
neither JSON nor form 415, bad body 400, over the hook's rate 429 with ``Retry-After``, replay 202 (not
written again). An accepted delivery is written to ``webhooks.deliveries.v1`` and answered 202 only once
the broker acknowledged it (503 with ``Retry-After`` when it could not be written: the sender retries). A
refused request never reaches Kafka.

Admin API, behind the admin token (:func:`app.ops.admin.admin_refusal`), answering JSON without secrets:

* ``GET /webhooks/hooks[?tenant=T]``: every hook (public fields, revision, last change);
* ``POST /webhooks/hooks``: create (a hook definition, secrets included; 409 when the id exists);
* ``GET /webhooks/hooks/{hook_id}``: one hook;
* ``POST /webhooks/hooks/{hook_id}/rotate-secret``: ``{"secret": new}`` (the newest stays active beside
  it) and/or ``{"drop_previous": true}`` (only the newest verifies from then on);
* ``POST /webhooks/hooks/{hook_id}/disable`` and ``.../enable``;
* ``GET /webhooks/hooks/{hook_id}/history``: the fan-in's recent outcomes of the hook (routed by Faust's
  router to the worker owning the hook's room);
* ``GET /webhooks/stats``: this worker's receiver and fan-in counters.

Writes go to the config topic (sealed with the tenant key) and are answered once this worker's replica
holds them. Two admins changing one hook at the same moment: the last write wins (no compare-and-set).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import aiohttp
from aiohttp.web import Request as AiohttpRequest
from faust import web
from faust.exceptions import SameNode
from faust.web.exceptions import ServiceUnavailable

from app.crypto.errors import CryptoError
from app.crypto.keyring import KeyLookup
from app.ops.admin import admin_refusal
from app.state.facts import conversation_key
from app.webhooks.config import StoredHook, seal_hook
from app.webhooks.delivery import DeliveryRecord
from app.webhooks.history import HookHistory
from app.webhooks.hooks import HookDefinition, HookDefinitionError
from app.webhooks.ratelimit import HookRateLimiter
from app.webhooks.replica import HookReplica
from app.webhooks.verify import Reason, ReplayGuard, Verdict, admit_delivery, verify_delivery

if TYPE_CHECKING:
    from app.faust_app import CarryoverApp

log = logging.getLogger(__name__)

RECEIVER_PATH = "/hooks/{hook_id}"
HOOKS_PATH = "/webhooks/hooks"
HOOK_PATH = "/webhooks/hooks/{hook_id}"
HOOK_ACTION_PATH = "/webhooks/hooks/{hook_id}/{action}"
STATS_PATH = "/webhooks/stats"
RETRY_AFTER_SECONDS = "5"
MAX_ADMIN_BODY_BYTES = 65_536

Send = Callable[[str, bytes, bytes, list[tuple[str, bytes]]], Awaitable[None]]
"""Writes one record (topic, key, value, headers) and returns once the broker acknowledged it."""


@dataclass
class ReceiverStats:
    """This worker's receiver counters: answers by reason, write failures."""

    answers: Counter[str] = field(default_factory=Counter)
    write_failures: int = 0
    fanned_in: int = 0
    duplicates: int = 0
    dead_lettered: int = 0

    def counters(self) -> dict[str, int]:
        """Flat counters for ``/metrics`` and ``/webhooks/stats``."""
        flat = {f"answered_{reason}": count for reason, count in sorted(self.answers.items())}
        return {
            **flat,
            "write_failures": self.write_failures,
            "fanned_in": self.fanned_in,
            "duplicates": self.duplicates,
            "dead_lettered": self.dead_lettered,
        }


@dataclass
class WebhookStage:
    """What the views share with the fan-in agent of one worker."""

    replica: HookReplica
    keys: Callable[[], Awaitable[KeyLookup]]
    send: Send
    deliveries_topic: str
    config_topic: str
    history_table: Any
    admin_token: str
    max_body_bytes: int
    guard: ReplayGuard
    limiter: HookRateLimiter = field(default_factory=HookRateLimiter)
    stats: ReceiverStats = field(default_factory=ReceiverStats)


def _json_error(view: web.View, status: int, message: str, **headers: str) -> web.Response:
    return view.json({"error": message}, status=status, headers=headers or None)


async def _read_bounded(request: web.Request, limit: int) -> bytes | None:
    """The body, or None once it passes ``limit`` bytes (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await cast(AiohttpRequest, request).content.read(65_536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


def register(app: CarryoverApp, stage: WebhookStage) -> None:
    """Serve the receiver and the admin API of ``stage`` on ``app``'s web server."""

    @app.page(RECEIVER_PATH, name="webhooks-receiver")
    class ReceiverView(web.View):
        """``POST /hooks/{hook_id}``: verify, write to Kafka, answer 202 after the broker's ack."""

        async def post(self, request: web.Request, hook_id: str) -> web.Response:
            """One delivery."""
            if not stage.replica.caught_up:
                stage.stats.answers["not_ready"] += 1
                return _json_error(
                    self, 503, "hooks are still being read; retry", **{"Retry-After": RETRY_AFTER_SECONDS}
                )
            hook = stage.replica.hook(hook_id)  # the definition verified against is the one written with
            verdict = await self._verdict(request, hook)
            stage.stats.answers[verdict.reason.value] += 1
            if verdict.to_process and hook is not None and verdict.payload is not None:
                record = DeliveryRecord(
                    hook_id=hook.hook_id,
                    tenant=hook.tenant,
                    conversation_id=hook.conversation_id,
                    delivery_id=verdict.delivery_id,
                    event=verdict.event,
                    payload=verdict.payload,
                    headers=verdict.headers,
                    received_ms=int(time.time() * 1000),
                )
                try:
                    await stage.send(stage.deliveries_topic, record.key, record.to_json(), [])
                except Exception as exc:  # noqa: BLE001 - any failure: not accepted, the sender retries
                    stage.guard.release(verdict.replay_key)
                    stage.stats.write_failures += 1
                    log.error(
                        "webhooks: hook %s: delivery not written (%s); answered 503",
                        hook_id,
                        type(exc).__name__,
                    )
                    return _json_error(
                        self,
                        503,
                        "the delivery could not be stored; retry",
                        **{"Retry-After": RETRY_AFTER_SECONDS},
                    )
                return self.json({"status": "accepted", "delivery_id": verdict.delivery_id}, status=202)
            if verdict.reason is Reason.REPLAY:
                return self.json({"status": "replay", "delivery_id": verdict.delivery_id}, status=202)
            if verdict.reason is not Reason.UNKNOWN_HOOK:
                log.info(
                    "webhooks: hook %s: %d %s (%s)",
                    hook_id,
                    verdict.status,
                    verdict.reason.value,
                    verdict.detail,
                )
            return self.json(
                {"error": verdict.detail, "reason": verdict.reason.value},
                status=verdict.status,
                headers=verdict.response_headers() or None,
            )

        async def _verdict(self, request: web.Request, hook: HookDefinition | None) -> Verdict:
            now = time.time()
            if hook is None or not hook.enabled:
                return verify_delivery(hook, {}, b"", now=now)
            length = cast(AiohttpRequest, request).content_length
            body = (
                None
                if length is not None and length > stage.max_body_bytes
                else (await _read_bounded(request, stage.max_body_bytes))
            )
            if body is None:
                return Verdict(Reason.TOO_LARGE, f"body over {stage.max_body_bytes} bytes")
            verdict = verify_delivery(
                hook, dict(request.headers), body, now=now, max_body_bytes=stage.max_body_bytes
            )
            return admit_delivery(
                verdict,
                hook,
                guard=stage.guard,
                limiter=stage.limiter,
                now=now,
                monotonic_now=time.monotonic(),
            )

    class AdminView(web.View):
        """Base of the admin views: the token check and the config writes."""

        def refused(self, request: web.Request) -> web.Response | None:
            refusal = admin_refusal(stage.admin_token, request.headers.get("Authorization"))
            if refusal is None:
                return None
            return self.json({"error": refusal.message}, status=refusal.status, headers=dict(refusal.headers))

        async def body(self, request: web.Request) -> dict[str, Any] | web.Response:
            raw = await _read_bounded(request, MAX_ADMIN_BODY_BYTES)
            if raw is None:
                return _json_error(self, 413, f"request body over {MAX_ADMIN_BODY_BYTES} bytes")
            try:
                parsed = json.loads(raw or b"{}")
            except ValueError:
                return _json_error(self, 400, "the request body must be a JSON object")
            if not isinstance(parsed, dict):
                return _json_error(self, 400, "the request body must be a JSON object")
            return parsed

        async def write(self, stored: StoredHook, status: int) -> web.Response:
            if not stage.replica.caught_up:
                return _json_error(
                    self, 503, "hooks are still being read; retry", **{"Retry-After": RETRY_AFTER_SECONDS}
                )
            keys = await stage.keys()
            try:
                value = seal_hook(stored, keys)
            except CryptoError:
                return _json_error(
                    self,
                    422,
                    f"tenant {stored.hook.tenant!r} has no current key in this worker's key file: add the "
                    "tenant's key (CARRYOVER_KEY_FILE) before creating its hooks",
                )
            try:
                await stage.send(stage.config_topic, stored.hook.hook_id.encode(), value, [])
            except Exception as exc:  # noqa: BLE001 - the admin retries
                return _json_error(
                    self,
                    503,
                    f"the hook could not be written ({type(exc).__name__}); retry",
                    **{"Retry-After": RETRY_AFTER_SECONDS},
                )
            if not await stage.replica.wait_for(stored.hook.hook_id, stored.revision):
                return _json_error(self, 504, "written, but not yet read back by this worker; check with GET")
            log.info(
                "webhooks: hook %s %s (revision %d)", stored.hook.hook_id, stored.change, stored.revision
            )
            return self.json(stored.public_json(), status=status)

        def existing(self, hook_id: str) -> StoredHook | web.Response:
            stored = stage.replica.stored(hook_id)
            if stored is None:
                return _json_error(self, 404, f"no hook {hook_id!r}")
            return stored

    @app.page(HOOKS_PATH, name="webhooks-hooks")
    class HooksView(AdminView):
        """List and create hooks."""

        async def get(self, request: web.Request) -> web.Response:
            """Every hook (of ``?tenant=`` when given)."""
            refused = self.refused(request)
            if refused is not None:
                return refused
            tenant = request.query.get("tenant")
            hooks = [
                s.public_json() for s in stage.replica.all() if tenant is None or s.hook.tenant == tenant
            ]
            return self.json({"hooks": hooks})

        async def post(self, request: web.Request) -> web.Response:
            """Create a hook from its definition (secrets included; never answered back)."""
            refused = self.refused(request)
            if refused is not None:
                return refused
            body = await self.body(request)
            if isinstance(body, web.Response):
                return body
            try:
                hook = HookDefinition.from_dict(body)
            except HookDefinitionError as exc:
                return _json_error(self, 422, f"not a valid hook: {exc}")
            if stage.replica.stored(hook.hook_id) is not None:
                return _json_error(
                    self, 409, f"hook {hook.hook_id!r} exists: rotate its secret or disable it"
                )
            return await self.write(StoredHook(hook, 1, int(time.time() * 1000), "created"), 201)

    @app.page(HOOK_PATH, name="webhooks-hook")
    class HookView(AdminView):
        """One hook."""

        async def get(self, request: web.Request, hook_id: str) -> web.Response:
            """The hook's public fields."""
            refused = self.refused(request)
            if refused is not None:
                return refused
            stored = self.existing(hook_id)
            return stored if isinstance(stored, web.Response) else self.json(stored.public_json())

    @app.page(HOOK_ACTION_PATH, name="webhooks-hook-action")
    class HookActionView(AdminView):
        """rotate-secret, disable, enable (POST) and history (GET)."""

        async def post(self, request: web.Request, hook_id: str, action: str) -> web.Response:
            """Change the hook."""
            refused = self.refused(request)
            if refused is not None:
                return refused
            stored = self.existing(hook_id)
            if isinstance(stored, web.Response):
                return stored
            body = await self.body(request)
            if isinstance(body, web.Response):
                return body
            hook = stored.hook
            if action in ("disable", "enable"):
                hook = hook.with_enabled(action == "enable")
                change = action + "d"
            elif action == "rotate-secret":
                secret, drop = body.get("secret"), body.get("drop_previous", False)
                if secret is None and not drop:
                    return _json_error(
                        self, 422, 'send {"secret": "<new secret>"} and/or {"drop_previous": true}'
                    )
                try:
                    if secret is not None:
                        if not isinstance(secret, str):
                            return _json_error(self, 422, "secret must be a string")
                        hook = hook.with_new_secret(secret)
                    if drop is True:
                        hook = hook.with_only_newest_secret()
                except HookDefinitionError as exc:
                    return _json_error(self, 422, f"not a valid secret: {exc}")
                change = "secret rotated" if secret is not None else "previous secret dropped"
            else:
                return _json_error(self, 404, f"no action {action!r}: use rotate-secret, disable or enable")
            updated = StoredHook(hook, stored.revision + 1, int(time.time() * 1000), change)
            return await self.write(updated, 200)

        async def get(self, request: web.Request, hook_id: str, action: str) -> web.Response:
            """The hook's delivery history, from the worker owning its room."""
            refused = self.refused(request)
            if refused is not None:
                return refused
            if action != "history":
                return _json_error(self, 404, f"no view {action!r}: GET .../history")
            stored = self.existing(hook_id)
            if isinstance(stored, web.Response):
                return stored
            unavailable = {"Retry-After": RETRY_AFTER_SECONDS}
            if self.app.in_recovery or self.app.rebalancing:
                return _json_error(self, 503, "tables are recovering or rebalancing; retry", **unavailable)
            room = conversation_key(stored.hook.tenant, stored.hook.conversation_id).encode()
            try:
                return await self.app.router.route_req(stage.history_table.name, room, self.web, request)
            except SameNode:
                pass
            except ServiceUnavailable:
                return _json_error(self, 503, "no worker owns this hook's room yet; retry", **unavailable)
            except (aiohttp.ClientError, OSError) as exc:
                return _json_error(
                    self,
                    503,
                    f"the worker owning this hook's room does not answer ({type(exc).__name__}); retry",
                    **unavailable,
                )
            history = HookHistory.from_json(stage.history_table.get(hook_id.encode()))
            return self.json({"hook_id": hook_id, **history.answer()})

    @app.page(STATS_PATH, name="webhooks-stats")
    class StatsView(AdminView):
        """This worker's receiver and fan-in counters."""

        async def get(self, request: web.Request) -> web.Response:
            """Counters, hooks known, replica state."""
            refused = self.refused(request)
            if refused is not None:
                return refused
            return self.json(
                {
                    **stage.stats.counters(),
                    "hooks": len(stage.replica),
                    "replica_caught_up": stage.replica.caught_up,
                    "replica_unreadable": stage.replica.stats.unreadable,
                    "replay_keys": len(stage.guard),
                }
            )
