"""``GET /sources/``: this worker's per-queue and per-subscription ingestion counters as JSON."""

from __future__ import annotations

from faust import web
from faust.web import Blueprint

from app.ingest.stats import registry

blueprint = Blueprint("carryover_sources")


@blueprint.route("/sources/", name="sources")
class SourcesView(web.View):
    """Totals per source kind and one entry per SQS queue / Pub/Sub subscription (see SourceStats)."""

    async def get(self, request: web.Request) -> web.Response:
        """The counters as JSON."""
        return self.json(registry.as_dict())
