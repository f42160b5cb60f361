"""Archive: windows closed on event time, rendered and delivered as the state stage reads (role ``archive``).

No agent of its own: the archive is a step of ``agents.state.conversations`` (the state stage's hook,
:attr:`app.state.stage.StateStage.after_record`), so it reads the conversation-events topic in the same order
as the state, with the state of each conversation already updated by the record it looks at. The decisions
are in :mod:`app.archive`; :class:`app.archive.runtime.ArchiveService` is the glue.

No table of its own either: the archive keeps its progress in the state table ``state-conversations``,
under keys no conversation has (:data:`app.archive.runtime.ARCHIVE_KEY_PREFIX`): per partition its watermark
and next windows to close (``%archive/p/<partition>``), and per open window the conversations seen in it
(``%archive/w/<partition>/<policy>/<window start>``). Faust writes a table's changelog record to the
partition of the record being processed, so the conversation states and the archive's progress of one
partition are one ordered changelog partition: whatever a crash keeps of it is a prefix, and a restored state
is never ahead of the restored progress by more than the record whose closes were under way (which the
re-run re-applies as a duplicate and closes again from the same state, to the same bytes).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from app.archive.closing import TICK_HEADER
from app.archive.runtime import ArchiveConfig, ArchiveService
from app.normalize.runtime import build_keyring
from app.settings import SettingsError

if TYPE_CHECKING:
    from app.faust_app import CarryoverApp


def register(app: CarryoverApp) -> None:
    """Add the archive's table and service to ``app`` and hook its step into the state stage."""
    stage = getattr(app, "state_stage", None)
    if stage is None:
        raise SettingsError("the archive role needs the state role in the same worker (CARRYOVER_ROLES)")
    settings, topics = app.carryover, app.streams

    async def keys() -> Any:
        return await build_keyring(settings)

    config = ArchiveConfig(
        bootstrap_servers=settings.bootstrap_servers,
        policies_topic=topics.archive_policies.get_topic_name(),
        events_topic=topics.conversation_events.get_topic_name(),
        events_partitions=int(topics.conversation_events.partitions or 1),
        state_window=settings.state_dedupe_window,
        idle_seconds=settings.archive_idle_seconds,
        aws_endpoint_url=settings.aws_endpoint_url,
        aws_region=settings.aws_region,
        kms_key_template=settings.archive_sse_kms_key,
        local_broker=settings.local_broker,
        fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
        keys=keys,
    )
    service = ArchiveService(
        config,
        state_table=stage.conversations,
        directory=stage.directory,
        assigned=lambda: set(app.assignor.assigned_actives()),
        highwater=lambda tp: app.consumer.highwater(tp),
        position=lambda tp: app.consumer.position(tp),
        directory_ready=lambda: stage.directory.caught_up,
    )
    app.service(service)  # type: ignore[arg-type]  # Faust starts instances as well as classes
    app.readiness_checks.append(
        lambda: (
            None
            if service.policies_caught_up
            else "archive policies catching up with carryover.config.archive"
        )
    )
    app.counters["archive"] = lambda: asdict(service.stats)
    stage.control_headers.add(TICK_HEADER)
    stage.after_record.append(service.on_record)
