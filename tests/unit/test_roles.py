"""Every role a setting can name registers something, and no role is on that runs nothing."""

from __future__ import annotations

from agents import ROLES as REGISTERED
from app.faust_app import create_app
from app.settings import ROLES, load


def test_every_declared_role_is_registered_by_an_agent_module() -> None:
    assert set(REGISTERED) == set(ROLES) == set(load({}).roles)


def test_each_role_adds_its_agents_or_services() -> None:
    normalize = create_app(load({"CARRYOVER_ROLES": "normalize"}))
    assert [agent.name for agent in normalize.agents.values()] == ["agents.normalize.normalize"]
    assert normalize._extra_services == []  # noqa: SLF001
    ingest = create_app(load({"CARRYOVER_ROLES": "ingest"}))
    assert list(ingest.agents) == [] and len(ingest._extra_services) == 1  # noqa: SLF001
