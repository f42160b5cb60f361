"""The lag page (``/lag/``), its JSON API (``/lag.json``) and Prometheus metrics (``/metrics``).

Lag is computed the way a consumer would: committed offsets of the group (admin API, with explicit
partitions, which the local broker needs) against fresh end offsets (a consumer's ``end_offsets``; on
the local broker the compat layer corrects them).  Faust's own ``/performance/`` figures are not used:
they are off by one and blank exactly when a consumer is stuck.

By default the report covers this app's consumer group over the topics its agents read.  Any other
group can be looked at with ``?group=NAME&topics=a,b`` (for example a downstream service's consumer);
``group`` may list several groups, comma separated, and ``topics`` applies to each.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from faust import web
from faust.types import AppT
from faust.web import Blueprint

from app.ops.health_views import readiness_failures, worker_state
from app.ops.lag import AgentSubscription, LagReport, compute_lag, prometheus_text, report_to_json

blueprint = Blueprint("carryover_lag")

REFRESH_SECONDS = 5
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4"


def bootstrap_servers(app: AppT) -> str:
    """The app's broker URLs as aiokafka's ``host:port,...``."""
    return ",".join(f"{url.host}:{url.port or 9092}" for url in app.conf.broker)


def client_options(app: AppT) -> dict[str, Any]:
    """Connection options (bootstrap, TLS/SASL) for extra aiokafka clients, as Faust's own clients use."""
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth  # noqa: PLC0415

    return {
        "bootstrap_servers": bootstrap_servers(app),
        "client_id": f"{app.conf.broker_client_id}-lag",
        **credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context),
    }


def agent_subscriptions(app: AppT) -> list[AgentSubscription]:
    """Every agent of ``app`` that reads topics, in the app's consumer group (``app.conf.id``)."""
    subscriptions = []
    for agent in app.agents.values():
        topics = tuple(sorted(agent.get_topic_names()))
        if topics:
            subscriptions.append(AgentSubscription(agent.name, app.conf.id, topics))
    return subscriptions


def app_groups(app: AppT) -> dict[str, tuple[str, ...]]:
    """The app's consumer group and the topics its agents read (empty when it has no stream agents)."""
    topics = sorted({topic for sub in agent_subscriptions(app) for topic in sub.topics})
    return {app.conf.id: tuple(topics)} if topics else {}


async def read_offsets(
    options: Mapping[str, Any], groups: Mapping[str, Sequence[str]]
) -> tuple[
    dict[str, dict[tuple[str, int], int | None]], dict[tuple[str, int], int], dict[tuple[str, int], int]
]:
    """(committed per group, end offsets, start offsets) for every partition of the groups' topics.

    Topics that do not exist are skipped; a group that never committed gets ``None`` per partition.
    """
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **options)
    admin = AIOKafkaAdminClient(**options)
    await consumer.start()
    try:
        await admin.start()
        existing = await consumer.topics()
        wanted = sorted({topic for topics in groups.values() for topic in topics if topic in existing})
        tps = [TopicPartition(t, p) for t in wanted for p in sorted(consumer.partitions_for_topic(t) or ())]
        ends: dict[tuple[str, int], int] = dict(await consumer.end_offsets(tps)) if tps else {}
        starts: dict[tuple[str, int], int] = dict(await consumer.beginning_offsets(tps)) if tps else {}
        committed: dict[str, dict[tuple[str, int], int | None]] = {}
        for group, topics in groups.items():
            group_tps = [tp for tp in tps if tp.topic in topics]
            answer = await admin.list_consumer_group_offsets(group, partitions=group_tps) if group_tps else {}
            committed[group] = {tp: None for tp in group_tps}
            for tp, meta in answer.items():
                committed[group][tp] = meta.offset if meta.offset >= 0 else None
        return committed, ends, starts
    finally:
        await admin.close()
        await consumer.stop()


async def lag_report(app: AppT, extra_groups: Mapping[str, Sequence[str]] | None = None) -> LagReport:
    """The lag of the app's own group (per agent too) and of ``extra_groups`` (group -> topics)."""
    groups = {**app_groups(app), **(extra_groups or {})}
    committed, ends, starts = await read_offsets(client_options(app), groups)
    return compute_lag(committed, ends, starts, agent_subscriptions(app))


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def requested_groups(query: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """Groups asked for with ``?group=g1,g2&topics=a,b``; ValueError when topics are missing."""
    names = _csv(query.get("group", ""))
    if not names:
        return {}
    topics = _csv(query.get("topics", ""))
    if not topics:
        raise ValueError("?group= needs ?topics=a,b (the topics that group reads)")
    return {name: topics for name in names}


def render_html(
    report: LagReport, refresh_seconds: int = REFRESH_SECONDS, not_ready: Sequence[str] = ()
) -> str:
    """The lag page: this worker's readiness (why not, when not), then one table per consumer group
    (topic, partition, committed, end, lag)."""
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<meta http-equiv='refresh' content='{refresh_seconds}'>",
        "<title>carryover lag</title>",
        "<style>body{font-family:sans-serif}table{border-collapse:collapse;margin-bottom:1.5em}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}th{background:#eee}"
        ".lagging{background:#fdd}</style></head><body>",
        f"<h1>Consumer lag</h1><p>Total lag: <b>{report.total}</b> (refreshes every {refresh_seconds} s)</p>",
    ]
    if not_ready:
        reasons = "; ".join(esc(reason) for reason in not_ready)
        parts.append(f"<p class='lagging'><b>This worker is not ready:</b> {reasons}.</p>")
    else:
        parts.append("<p>This worker is ready.</p>")
    if not report.groups:
        parts.append("<p>No consumer group to show: this worker runs no stream agents.</p>")
    for group in report.groups:
        parts.append(f"<h2>Group <code>{esc(group.group)}</code>: lag {group.lag}</h2>")
        parts.append(
            "<table><tr><th>topic</th><th>partition</th><th>committed</th><th>end</th><th>lag</th></tr>"
        )
        for topic in group.topics:
            for p in topic.partitions:
                committed = "—" if p.committed is None else str(p.committed)
                row_class = " class='lagging'" if p.lag else ""
                parts.append(
                    f"<tr{row_class}><td>{esc(p.topic)}</td><td>{p.partition}</td><td>{committed}</td>"
                    f"<td>{p.end}</td><td>{p.lag}</td></tr>"
                )
            parts.append(
                f"<tr><th>{esc(topic.topic)}</th><th colspan='3'>topic total</th><th>{topic.lag}</th></tr>"
            )
        parts.append("</table>")
    if report.agents:
        parts.append("<h2>Agents</h2><table><tr><th>agent</th><th>group</th><th>topics</th><th>lag</th></tr>")
        for agent in report.agents:
            parts.append(
                f"<tr><td>{esc(agent.agent)}</td><td>{esc(agent.group)}</td>"
                f"<td>{esc(', '.join(agent.topics))}</td><td>{agent.lag}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


class LagView(web.View):
    """Shared request handling: which groups, and a 503 when Kafka cannot be asked."""

    async def report_or_error(self, request: web.Request) -> LagReport | web.Response:
        """The report for this request, or the error response to send instead."""
        try:
            extra = requested_groups(request.query)
        except ValueError as exc:
            return self.json({"error": str(exc)}, status=400)
        try:
            return await lag_report(self.app, extra)
        except KafkaError as exc:
            return self.json({"error": f"cannot read offsets from Kafka: {exc!r}"}, status=503)


@blueprint.route("/lag/", name="page")
class LagPage(LagView):
    """HTML lag page, refreshing itself every 5 s."""

    async def get(self, request: web.Request) -> web.Response:
        """Render the lag page."""
        report = await self.report_or_error(request)
        if not isinstance(report, LagReport):
            return report
        return self.html(render_html(report, not_ready=readiness_failures(worker_state(self.app))))


@blueprint.route("/lag.json", name="json")
class LagJson(LagView):
    """The lag report as JSON."""

    async def get(self, request: web.Request) -> web.Response:
        """Answer the lag report."""
        report = await self.report_or_error(request)
        if not isinstance(report, LagReport):
            return report
        not_ready = readiness_failures(worker_state(self.app))
        return self.json(
            {**report_to_json(report), "worker": {"ready": not not_ready, "not_ready": not_ready}}
        )


@blueprint.route("/metrics", name="metrics")
class Metrics(LagView):
    """Lag per group/topic/partition in Prometheus text format."""

    async def get(self, request: web.Request) -> web.Response:
        """Answer the metrics."""
        report = await self.report_or_error(request)
        if not isinstance(report, LagReport):
            return report
        return self.text(prometheus_text(report), content_type=PROMETHEUS_CONTENT_TYPE)
