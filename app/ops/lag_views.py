"""The lag page (``/lag/``), its JSON (``/lag.json``) and Prometheus metrics (``/metrics``).

Every figure comes from the worker's :class:`app.ops.lag_monitor.LagMonitor` (long-lived clients sampling
the app's own consumer group every ``CARRYOVER_LAG_SAMPLE_SECONDS``) and from the stages' counters: a
request never opens a Kafka client, and only the app's own group and topics are shown (``?group=`` is
refused). Lag is computed the way a consumer would: committed offsets against fresh end offsets (corrected
on the local broker); Faust's own ``/performance/`` figures are not used (off by one, blank when stuck).
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping, Sequence
from typing import Any

from faust import web
from faust.types import AppT
from faust.web import Blueprint
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric

from app.ingest.stats import registry as ingest_registry
from app.ops.health_views import readiness_failures, worker_state
from app.ops.lag_monitor import LagMonitor, LagSnapshot
from app.ops.lag_status import sparkline_svg
from app.ops.metrics import WorkerCollector, metric_families
from app.ops.tenants import TenantLoad, top_tenants

blueprint = Blueprint("carryover_lag")

REFRESH_SECONDS = 5
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4"
STATUS_COLOURS = {"OK": "#2e7d32", "WARN": "#ef6c00", "STALL": "#c62828", "STOP": "#6a1b9a", "ERR": "#424242"}


def monitor_of(app: AppT) -> LagMonitor | None:
    """The app's lag monitor (None when ``app.ops.register`` did not run)."""
    monitor: LagMonitor | None = getattr(app, "lag_monitor", None)
    return monitor


def snapshot_to_json(snapshot: LagSnapshot) -> dict[str, Any]:
    """The snapshot as JSON-ready data (what ``/lag.json`` and ``carryover lag`` show)."""
    return {
        "sampled_at": snapshot.sampled_at,
        "window_seconds": snapshot.window_seconds,
        "group_members": snapshot.members,
        "total_lag": snapshot.total_lag,
        "error": snapshot.error or None,
        "sources": snapshot.sources.as_dict() if snapshot.sources is not None else None,
        "agents": [
            {
                "agent": a.agent,
                "stage": a.stage,
                "topics": list(a.topics),
                "status": a.status.value,
                "reason": a.reason,
                "lag": a.lag,
                "time_lag_seconds": a.time_lag_seconds,
                "history": list(a.history),
            }
            for a in snapshot.agents
        ],
        "partitions": [
            {
                "group": p.group,
                "topic": p.topic,
                "partition": p.partition,
                "committed": p.committed,
                "end": p.end,
                "lag": p.lag,
                "time_lag_seconds": p.time_lag_seconds,
                "status": p.status.value,
                "reason": p.reason,
                "history": list(p.history),
            }
            for p in snapshot.partitions
        ],
    }


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _badge(status: str) -> str:
    colour = STATUS_COLOURS.get(status, "#424242")
    return f"<span class='badge' style='background:{colour}'>{html.escape(status)}</span>"


def render_html(
    snapshot: LagSnapshot | None,
    *,
    not_ready: Sequence[str] = (),
    sources: Mapping[str, Mapping[str, int]] | None = None,
    sources_scope: str = "this worker",
    tenants: Sequence[TenantLoad] = (),
    refresh_seconds: int = REFRESH_SECONDS,
) -> str:
    """The lag page: readiness, sources, agents (worst first, by flow), then every partition (worst first)."""
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<meta http-equiv='refresh' content='{refresh_seconds}'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<title>carryover lag</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:1em 2em;color:#222}"
        "table{border-collapse:collapse;margin-bottom:1.5em}"
        "td,th{border-bottom:1px solid #ddd;padding:3px 10px;"
        "text-align:right;white-space:nowrap}th{background:#f3f3f3}td.l,th.l{text-align:left}"
        ".badge{color:#fff;border-radius:4px;padding:1px 7px;font-weight:600;font-size:.85em}"
        ".spark{color:#1565c0;vertical-align:middle}.notready{background:#fde0dc;padding:.4em .8em}"
        ".reason{color:#555;font-size:.9em}</style></head><body>",
        "<h1>carryover — consumer lag</h1>",
    ]
    if not_ready:
        reasons = "; ".join(esc(reason) for reason in not_ready)
        parts.append(f"<p class='notready'><b>This worker is not ready:</b> {reasons}.</p>")
    else:
        parts.append("<p>This worker is ready.</p>")
    if snapshot is None:
        parts.append("<p>Waiting for the first sample of the offsets…</p></body></html>")
        return "\n".join(parts)
    sampled = time.strftime("%H:%M:%S", time.localtime(snapshot.sampled_at))
    members = "unknown" if snapshot.members is None else str(snapshot.members)
    parts.append(
        f"<p>Total lag <b>{snapshot.total_lag}</b> · sampled {sampled}"
        f" · window {snapshot.window_seconds:.0f} s"
        f" · group members {members} · refreshes every {refresh_seconds} s</p>"
    )
    if snapshot.error:
        parts.append(f"<p class='notready'><b>ERR:</b> {esc(snapshot.error)}</p>")
    if sources:
        parts.append(
            "<h2>Sources (this worker)</h2><table><tr><th class='l'>source</th><th>queues</th>"
            "<th>in flight</th><th>backlog</th><th>received</th><th>landed</th><th>errors</th>"
            "<th title='receives deferred by staging admission: a source above its fair share'>held</th></tr>"
        )
        for kind, t in sorted(sources.items()):
            backlog = str(t.get("queue_depth", 0)) if kind == "sqs" else "n/a"
            parts.append(
                f"<tr><td class='l'>{esc(kind)}</td><td>{t.get('sources', 0)}</td>"
                f"<td>{t.get('in_flight', 0)}</td>"
                f"<td>{backlog}</td><td>{t.get('received', 0)}</td><td>{t.get('landed', 0)}</td>"
                f"<td>{t.get('errors', 0)}</td><td>{t.get('held', 0)}</td></tr>"
            )
        parts.append("</table>")
    if tenants:
        parts.append(
            "<h2>Busiest tenants (this worker)</h2><table><tr><th class='l'>tenant</th><th>backlog</th>"
            "<th>in flight</th><th>received</th><th>landed</th></tr>"
        )
        for load in tenants:
            parts.append(
                f"<tr><td class='l'>{esc(load.tenant)}</td><td>{load.backlog}</td><td>{load.in_flight}</td>"
                f"<td>{load.received}</td><td>{load.landed}</td></tr>"
            )
        parts.append("</table>")
    if not snapshot.agents:
        parts.append("<p>No consumer group to show: this worker runs no stream agents.</p>")
    else:
        parts.append(
            "<h2>Agents</h2><table><tr><th class='l'>status</th><th class='l'>agent</th>"
            "<th class='l'>stage</th>"
            "<th>lag</th><th>time lag</th><th class='l'>last minutes</th><th class='l'>why</th></tr>"
        )
        for a in snapshot.agents:
            parts.append(
                f"<tr><td class='l'>{_badge(a.status.value)}</td><td class='l'>{esc(a.agent)}</td>"
                f"<td class='l'>{esc(a.stage)}</td><td>{a.lag}</td><td>{_age(a.time_lag_seconds)}</td>"
                f"<td class='l'>{sparkline_svg(a.history)}</td><td class='l reason'>{esc(a.reason)}</td></tr>"
            )
        parts.append("</table>")
        parts.append(
            "<h2>Partitions</h2><table><tr><th class='l'>status</th><th class='l'>topic</th>"
            "<th>partition</th>"
            "<th>committed</th><th>end</th><th>lag</th><th>time lag</th><th class='l'>last minutes</th>"
            "<th class='l'>why</th></tr>"
        )
        for p in snapshot.partitions:
            committed = "—" if p.committed is None else str(p.committed)
            parts.append(
                f"<tr><td class='l'>{_badge(p.status.value)}</td><td class='l'>{esc(p.topic)}</td>"
                f"<td>{p.partition}</td><td>{committed}</td><td>{p.end}</td><td>{p.lag}</td>"
                f"<td>{_age(p.time_lag_seconds)}</td><td class='l'>{sparkline_svg(p.history)}</td>"
                f"<td class='l reason'>{esc(p.reason)}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def refused_query(query: Mapping[str, str]) -> str | None:
    """Why a query is refused: only the app's own group is shown."""
    if "group" in query or "topics" in query:
        return "only this app's own consumer group and topics are shown: ?group= and ?topics= are refused"
    return None


class LagView(web.View):
    """Shared request handling: refuse other groups; the monitor's latest snapshot."""

    def refusal(self, request: web.Request) -> web.Response | None:
        """The error response for a request asking for something this view does not show."""
        refused = refused_query(request.query)
        if refused:
            return self.json({"error": refused}, status=400)
        if monitor_of(self.app) is None:
            return self.json({"error": "no lag monitor in this worker"}, status=503)
        return None

    def snapshot(self) -> LagSnapshot | None:
        """The latest snapshot (None before the first sample)."""
        monitor = monitor_of(self.app)
        return monitor.snapshot if monitor is not None else None


@blueprint.route("/lag/", name="page")
class LagPage(LagView):
    """HTML lag page, refreshing itself every 5 s."""

    async def get(self, request: web.Request) -> web.Response:
        """Render the lag page."""
        refusal = self.refusal(request)
        if refusal is not None:
            return refusal
        not_ready = readiness_failures(worker_state(self.app))
        snapshot = self.snapshot()
        summed = snapshot.sources if snapshot is not None else None
        if summed is not None and summed.workers:
            n = len(summed.workers)
            sources, scope = summed.totals, f"all {n} ingesting worker{'s' if n != 1 else ''}"
        else:
            sources = {kind: ingest_registry.totals(kind) for kind in ("sqs", "pubsub")}
            scope = "this worker"
        shown = sources if any(t.get("sources") or t.get("received") for t in sources.values()) else None
        tenants = top_tenants(ingest_registry.sources.values())
        page = render_html(snapshot, not_ready=not_ready, sources=shown, sources_scope=scope, tenants=tenants)
        return self.html(page)


@blueprint.route("/lag.json", name="json")
class LagJson(LagView):
    """The lag snapshot as JSON, with this worker's readiness."""

    async def get(self, request: web.Request) -> web.Response:
        """Answer the snapshot (503 before the first sample)."""
        refusal = self.refusal(request)
        if refusal is not None:
            return refusal
        snapshot = self.snapshot()
        if snapshot is None:
            return self.json({"error": "no sample yet; retry"}, status=503, headers={"Retry-After": "2"})
        not_ready = readiness_failures(worker_state(self.app))
        tenants = [vars(load) for load in top_tenants(ingest_registry.sources.values())]
        worker = {"ready": not not_ready, "not_ready": not_ready}
        return self.json({**snapshot_to_json(snapshot), "worker": worker, "tenants": tenants})


def worker_families(app: AppT) -> list[Metric]:
    """Every metric family of the running worker."""
    monitor = monitor_of(app)
    counters = getattr(app, "counters", {})
    return metric_families(
        monitor.snapshot if monitor is not None else None,
        {kind: ingest_registry.totals(kind) for kind in ("sqs", "pubsub")},
        {stage: provider() for stage, provider in counters.items()},
        bool(app.in_recovery),
        top_tenants(ingest_registry.sources.values()),
    )


@blueprint.route("/metrics", name="metrics")
class Metrics(web.View):
    """Prometheus exposition of lag, statuses, stage counters and recovery (prometheus_client)."""

    async def get(self, request: web.Request) -> web.Response:
        """Answer the metrics."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(WorkerCollector(lambda: worker_families(self.app)))
        return self.text(generate_latest(registry).decode(), content_type=PROMETHEUS_CONTENT_TYPE)
