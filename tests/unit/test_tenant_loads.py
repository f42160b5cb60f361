"""app.ops.tenants: the busiest tenants, top N plus "other", and how /metrics and the page show them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.ingest.stats import SourceStats
from app.ops.lag_monitor import LagSnapshot
from app.ops.lag_views import render_html
from app.ops.metrics import WorkerCollector, metric_families
from app.ops.tenants import OTHER, TenantLoad, top_tenants


def source(
    tenant: str | None, depth: int, landed: int, in_flight: int = 0, active: bool = True
) -> SourceStats:
    stats = SourceStats("sqs", f"q/{tenant}/{depth}", f"q-{tenant}", tenant)
    stats.queue_depth, stats.landed, stats.received, stats.in_flight, stats.active = (
        depth,
        landed,
        landed,
        in_flight,
        active,
    )
    return stats


def test_the_busiest_tenants_first_and_the_rest_as_other() -> None:
    sources = [
        source("hot", 50_000, 900, 40),
        source("hot", 100, 100),  # a second queue of the same tenant
        source("b", 0, 30),
        source("c", 0, 10),
        source("d", 5, 1),
        source(None, 0, 2),
        source("gone", 999_999, 999, active=False),  # retired sources do not count
    ]
    assert top_tenants(sources, n=2) == [
        TenantLoad("hot", 50_100, 40, 1000, 1000),
        TenantLoad("d", 5, 0, 1, 1),
        TenantLoad(OTHER, 0, 0, 42, 42),
    ]
    assert [t.tenant for t in top_tenants(sources, n=10)] == ["hot", "d", "b", "c", "unknown"]


def test_tenants_on_metrics_and_page_are_bounded() -> None:
    sources = [source(f"t{i:03d}", i, i) for i in range(300)]
    tenants = top_tenants(sources)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkerCollector(lambda: metric_families(None, {}, {}, False, tenants)))
    samples = [
        s
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
        if s.name == "carryover_ingest_tenant_backlog_messages"
    ]
    assert len(samples) == 11 and samples[0].labels == {"tenant": "t299"} and samples[0].value == 299
    assert samples[-1].labels == {"tenant": OTHER} and samples[-1].value == sum(range(290))
    page = render_html(LagSnapshot(0.0, 60.0, None, (), ()), tenants=tenants)
    assert "Busiest tenants" in page and "<td class='l'>t299</td><td>299</td>" in page
    assert (
        page.count("<td class='l'>t") == 10
        and f"<td class='l'>{OTHER}</td><td>{sum(range(290))}</td>" in page
    )
