"""The web surface of a worker with every role: each view is either open (probes, lag, metrics) or guarded
by the admin token. A new view fails this test until it is put in one of the two lists — and a guarded one
is then tried without a token, with a wrong one and with the right one by tests/e2e/test_state.py."""

from __future__ import annotations

from app.faust_app import create_app
from app.settings import ROLES, load

OPEN = {"/healthz", "/readyz", "/lag/", "/lag.json", "/metrics", "/sources/", "/hooks/{hook_id}"}
"""Views that reveal no message or table content (offsets, counters, source names); the webhook receiver
is open to the world but verifies every request's signature (tests/e2e/test_webhooks.py)."""
GUARDED = {
    "/state/conversations/{tenant}/{conversation_id}",
    "/state/stats",
    "/webhooks/hooks",
    "/webhooks/hooks/{hook_id}",
    "/webhooks/hooks/{hook_id}/{action}",
    "/webhooks/stats",
}
"""Views behind the admin token."""


def test_every_view_of_every_role_is_classified_and_faust_table_views_are_off() -> None:
    app = create_app(load({"CARRYOVER_ROLES": ",".join(ROLES), "CARRYOVER_SCHEMA_REGISTRY_URL": "mock://x"}))
    views = set(app.web.views)
    assert views == OPEN | GUARDED, (
        f"classify these views as open or guarded: {sorted(views ^ (OPEN | GUARDED))}"
    )
    assert not app.conf.web_tables_enabled and not app.conf.web_router_enabled
