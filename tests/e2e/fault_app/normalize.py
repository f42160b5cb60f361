"""carryover's app with one injected fault, for the agent-guard test: the normalizer raises on any staging
record whose value contains ``INJECT-AGENT-FAULT`` (an exception that escaped the pure core, which the real
parts cannot produce on purpose).

Run: ``faust -A tests.e2e.fault_app.normalize worker`` with the usual ``CARRYOVER_*`` environment.
"""

from __future__ import annotations

from app import worker_app
from app.normalize.normalizer import Normalizer, Outgoing

FAULT_MARK = b"INJECT-AGENT-FAULT"
_process = Normalizer.process


def _faulty_process(
    self: Normalizer, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]], origin: str
) -> list[Outgoing]:
    if FAULT_MARK in value:
        raise RuntimeError("injected fault in the normalize agent")
    return _process(self, key, value, headers, origin)


Normalizer.process = _faulty_process  # type: ignore[method-assign]


def __getattr__(name: str) -> object:
    if name == "app":  # what ``faust -A`` asks for; built only then
        return worker_app()
    raise AttributeError(name)
