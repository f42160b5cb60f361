"""Liveness (``/healthz``) and readiness (``/readyz``) of a worker, for Kubernetes probes.

``/healthz`` answers 200 while the worker's event loop serves requests.  ``/readyz`` answers 200 only
when the producer is started and the consumer has received its assignment from the group (possibly
no partitions: a spare worker is ready too) and is neither rebalancing nor recovering tables;
otherwise 503 with the checks that failed.  Every Faust worker joins its group (Faust always
subscribes to its leader-assignor topic), so an ingest-only worker gets an assignment as well.
"""

from __future__ import annotations

from dataclasses import dataclass

from faust import web
from faust.types import AppT
from faust.web import Blueprint

blueprint = Blueprint("carryover_health")


@dataclass(frozen=True)
class WorkerState:
    """What readiness is decided on, read from the running app."""

    producer_started: bool
    assigned: bool
    rebalancing: bool
    recovering: bool
    waiting_for: tuple[str, ...] = ()
    """What the roles' own readiness checks still wait for (e.g. the user directory catching up)."""


def readiness_failures(state: WorkerState) -> list[str]:
    """Why the worker is not ready (empty when it is)."""
    failures = []
    if not state.producer_started:
        failures.append("producer not started")
    if not state.assigned:
        failures.append("consumer not assigned yet")
    if state.rebalancing:
        failures.append("consumer group rebalancing")
    if state.recovering:
        failures.append("tables recovering")
    failures.extend(state.waiting_for)
    return failures


def worker_state(app: AppT) -> WorkerState:
    """The app's current state as far as readiness goes."""
    producer = app.producer
    return WorkerState(
        producer_started=bool(producer.started) and not producer.should_stop,
        assigned=getattr(app, "_assignment", None) is not None,
        rebalancing=bool(app.rebalancing),
        recovering=bool(app.in_recovery),
        waiting_for=tuple(
            reason for check in getattr(app, "readiness_checks", ()) if (reason := check()) is not None
        ),
    )


@blueprint.route("/healthz", name="healthz")
class Healthz(web.View):
    """Liveness: the process and its event loop are alive."""

    async def get(self, request: web.Request) -> web.Response:
        """Always 200 while the worker can answer."""
        return self.json({"status": "alive"})


@blueprint.route("/readyz", name="readyz")
class Readyz(web.View):
    """Readiness: producer started, consumer assigned, no rebalance or table recovery under way."""

    async def get(self, request: web.Request) -> web.Response:
        """200 when ready, 503 with the failed checks otherwise."""
        failures = readiness_failures(worker_state(self.app))
        if failures:
            return self.json({"status": "not ready", "failures": failures}, status=503)
        return self.json({"status": "ready"})
