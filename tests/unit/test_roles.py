"""Every role a setting can name registers something, and no role is on that runs nothing."""

from __future__ import annotations

from agents import ROLES as REGISTERED
from app.faust_app import create_app
from app.settings import ROLES, load


def test_every_declared_role_is_registered_by_an_agent_module() -> None:
    assert set(REGISTERED) == set(ROLES) == set(load({}).roles)


def services(app: object) -> list[str]:
    """Names of the services an app starts besides its agents (every worker has its lag monitor)."""
    started = app._extra_services  # type: ignore[attr-defined]  # noqa: SLF001
    return sorted(s.__name__ if isinstance(s, type) else type(s).__name__ for s in started)


def test_each_role_adds_its_agents_or_services() -> None:
    normalize = create_app(load({"CARRYOVER_ROLES": "normalize"}))  # the batch stage by default
    assert list(normalize.agents) == [] and services(normalize) == ["LagMonitor"]
    assert list(normalize.stage_readers) == ["normalize.batch"]
    assert [type(s).__name__ for s in normalize.partition_listeners] == ["NormalizeBatchStage"]
    assert normalize.externally_read_topics == {"legacy.staging.v1"}
    assert normalize.lag_monitor is not None  # the lag page lists the stage as it lists agents
    assert [(s.agent, s.topics) for s in normalize.lag_monitor.subscriptions()] == [
        ("normalize.batch", ("legacy.staging.v1",))
    ]
    agent = create_app(load({"CARRYOVER_ROLES": "normalize", "CARRYOVER_NORMALIZE_PATH": "agent"}))
    assert [a.name for a in agent.agents.values()] == ["agents.normalize.normalize"]
    assert agent.stage_readers == {} and agent.partition_listeners == [] and not agent.externally_read_topics
    ingest = create_app(load({"CARRYOVER_ROLES": "ingest"}))
    assert list(ingest.agents) == [] and services(ingest) == ["IngestService", "LagMonitor"]
    state = create_app(load({"CARRYOVER_ROLES": "state"}))
    assert sorted(state.agents) == ["agents.state.conversations", "agents.state.route"]
    assert services(state) == ["DirectoryReplica", "LagMonitor"]
