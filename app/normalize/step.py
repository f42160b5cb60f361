"""One staging record through the dedupe window and the normalizer: what the normalize agent and the batch
stage (:mod:`app.normalize.batch_stage`) share. No Kafka here: callers send the records and remember the
source id (:meth:`SeenMarks.remember`) once they know none of them became a dead letter.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from app.normalize.dedupe import SeenMarks
from app.normalize.mapping.pipeline import publication_id
from app.normalize.normalizer import REASON_AGENT_ERROR, REASON_SEND_FAILED, Normalizer, Outgoing

log = logging.getLogger(__name__)


@dataclass
class Step:
    """What became of one staging record."""

    source_id: str = ""
    outgoing: list[Outgoing] = field(default_factory=list)
    duplicate: bool = False  # dropped: the source message went through at another staging position


def normalize_staging_record(
    normalizer: Normalizer,
    marks: SeenMarks | None,
    key: bytes | None,
    value: bytes,
    headers: list[tuple[str, bytes]],
    *,
    partition: int,
    offset: int,
    at: float,
    origin: str,
) -> Step:
    """Dedupe and normalize one staging record (``at``: its record time in seconds); never raises.

    ``marks`` must hold ``partition`` (loaded by the caller). Any exception becomes the record's one dead
    letter (reason ``agent_error``, the traceback in the log), as in :mod:`app.agent_guard`.
    """
    step = Step()
    try:
        step.source_id = publication_id(dict(headers))
        if (
            marks is not None
            and step.source_id
            and marks.is_duplicate(partition, step.source_id, offset + 1, at)
        ):
            normalizer.stats.duplicates += 1
            step.duplicate = True
            return step
        step.outgoing = normalizer.process(key, value, headers, origin)
    except Exception as exc:  # noqa: BLE001 - the guard: this record becomes its dead letter
        log.exception("normalize failed on %s; it is dead-lettered (agent_error)", origin)
        step.outgoing = [
            normalizer.dead_letter(
                key,
                value,
                headers,
                REASON_AGENT_ERROR,
                f"{type(exc).__name__} in the normalize stage; see the worker log at {origin}",
                origin,
            )
        ]
    return step


def send_failed_letter(
    normalizer: Normalizer,
    key: bytes | None,
    value: bytes,
    headers: list[tuple[str, bytes]],
    refused: Outgoing,
    exc: Exception,
    origin: str,
) -> Outgoing:
    """The dead letter (reason ``send_failed``) of a staging record one of whose records the producer
    refused outright (too large, a bad header): the record is never dropped."""
    return normalizer.dead_letter(
        key,
        value,
        headers,
        REASON_SEND_FAILED,
        f"the producer refused a {refused.topic} record: {type(exc).__name__}",
        origin,
    )
