"""The state read path: ``GET /state/conversations/{tenant}/{conversation_id}`` behind the admin token.

Any worker answers: the request is forwarded (with its headers) by Faust's router to the worker that owns
the conversation's partition of ``state-conversations``, which answers from its table. 401 without the
admin token, 503 while no token is configured or while tables recover or the partition has no owner,
404 for a conversation the state has never seen. Conversation ids with ``/`` are sent URL-encoded.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

import aiohttp
from faust import web
from faust.exceptions import SameNode
from faust.web.exceptions import ServiceUnavailable

from app.ops.admin import admin_refusal
from app.state.answers import conversation_answer
from app.state.conversation import ConversationState
from app.state.facts import conversation_key

if TYPE_CHECKING:
    from app.faust_app import CarryoverApp
    from app.state.stage import StateStage

CONVERSATION_PATH = "/state/conversations/{tenant}/{conversation_id}"
STATS_PATH = "/state/stats"
RETRY_AFTER_SECONDS = "5"


def register(app: CarryoverApp, stage: StateStage) -> None:
    """Serve the read path of ``stage`` on ``app``'s web server."""
    events_topic = app.streams.conversation_events.get_topic_name()

    @app.page(CONVERSATION_PATH, name="state-conversation")
    class ConversationView(web.View):
        """One conversation's state, from whichever worker owns it."""

        async def get(self, request: web.Request, tenant: str, conversation_id: str) -> web.Response:
            """The conversation's answer (:func:`app.state.answers.conversation_answer`)."""
            refusal = admin_refusal(stage.admin_token, request.headers.get("Authorization"))
            if refusal is not None:
                return self.json(
                    {"error": refusal.message}, status=refusal.status, headers=dict(refusal.headers)
                )
            unavailable = {"Retry-After": RETRY_AFTER_SECONDS}
            if self.app.in_recovery or self.app.rebalancing:
                return self.json(
                    {"error": "tables are recovering or rebalancing; retry"}, status=503, headers=unavailable
                )
            key = conversation_key(tenant, conversation_id).encode()
            try:
                return await self.app.router.route_req(stage.conversations.name, key, self.web, request)
            except SameNode:
                pass
            except ServiceUnavailable:
                return self.json(
                    {"error": "no worker owns this conversation yet; retry"}, status=503, headers=unavailable
                )
            except (aiohttp.ClientError, OSError) as exc:  # the owner left; the group has not rebalanced yet
                error = f"the worker owning this conversation does not answer ({type(exc).__name__}); retry"
                return self.json({"error": error}, status=503, headers=unavailable)
            raw = stage.conversations.get(key)
            if raw is None:
                return self.json(
                    {"error": f"no state for conversation {conversation_id!r} of {tenant!r}"}, status=404
                )
            state = ConversationState.from_json(raw, window=stage.window)
            answer = conversation_answer(state, stage.directory)
            answer["served_by"] = str(self.app.conf.canonical_url)
            answer["directory_caught_up"] = stage.directory.caught_up
            return self.json(answer)

    @app.page(STATS_PATH, name="state-stats")
    class StatsView(web.View):
        """This worker's state-stage counters (not routed: each worker answers for itself)."""

        async def get(self, request: web.Request) -> web.Response:
            """Counters, directory size and readiness of this worker's state stage."""
            refusal = admin_refusal(stage.admin_token, request.headers.get("Authorization"))
            if refusal is not None:
                return self.json(
                    {"error": refusal.message}, status=refusal.status, headers=dict(refusal.headers)
                )
            return self.json(
                {
                    **asdict(stage.stats),
                    "directory_users": len(stage.directory),
                    "directory_caught_up": stage.directory.caught_up,
                    "directory_records_read": stage.directory.stats.records,
                    "in_recovery": bool(self.app.in_recovery),
                    "active_partitions": sorted(
                        tp.partition
                        for tp in self.app.assignor.assigned_actives()
                        if tp.topic == events_topic
                    ),
                }
            )
