"""The batch stage's readiness (what /readyz says for it) in each state of its life."""

from __future__ import annotations

import asyncio

from app.normalize.batch_stage import NormalizeBatchStage
from app.normalize.normalizer import Normalizer


def stage(normalizer_error: Exception | None = None) -> NormalizeBatchStage:
    async def ready() -> Normalizer:
        raise normalizer_error or RuntimeError("not used")

    async def commit(_offsets: object) -> bool:
        return True

    return NormalizeBatchStage(
        normalizer=ready,
        client_options={"bootstrap_servers": "127.0.0.1:1"},
        staging_topic="legacy.staging.v1",
        dead_letter_topic="carryover.dlq.v1",
        canonical_topics={},
        seen_changelog="carryover-normalize-seen-batches-changelog",
        group_id="carryover",
        dedupe_window=3600,
        partitions=6,
        replicas=1,
        local=True,
        max_request_size=1_048_576,
        fetch_max_wait_ms=100,
        commit=commit,
    )


def test_not_ready_until_started() -> None:
    assert stage().readiness() == ("normalize.batch not started yet (tenant keys, schema ids, Kafka clients)")


def test_a_start_that_fails_says_why_and_tries_again() -> None:
    async def scenario() -> tuple[str | None, bool]:
        s = stage(RuntimeError("schema registry unreachable"))
        starting = asyncio.create_task(s.start())
        for _ in range(100):  # the first attempt fails at once; its error is set before the back-off
            if s.error is not None:
                break
            await asyncio.sleep(0.01)
        why = s.readiness()
        retrying = not starting.done()
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        return why, retrying

    why, retrying = asyncio.run(scenario())
    assert why == (
        "normalize.batch could not start, trying again: RuntimeError('schema registry unreachable')"
    )
    assert retrying


def test_a_loop_that_ended_and_a_failed_batch_are_reported() -> None:
    async def scenario() -> tuple[str | None, str | None, str | None]:
        s = stage()

        async def crash() -> None:
            raise ValueError("boom")

        s._task = asyncio.create_task(crash())  # noqa: SLF001 - the loop's task, ended
        await asyncio.gather(s._task, return_exceptions=True)  # noqa: SLF001
        ended = s.readiness()
        s._task = asyncio.create_task(asyncio.sleep(10))  # noqa: SLF001 - running again
        s.error = "KafkaTimeoutError()"
        failing = s.readiness()
        s.error = None
        running = s.readiness()
        s._task.cancel()  # noqa: SLF001
        return ended, failing, running

    ended, failing, running = asyncio.run(scenario())
    assert ended == "normalize.batch stopped: ValueError('boom')"
    assert failing == "normalize.batch failed a batch and reads it again: KafkaTimeoutError()"
    assert running is None
