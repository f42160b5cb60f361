"""The lag page in a real browser: a consumer pauses, its lag and status rise, it resumes, they fall to OK.

Headless Chromium (Debian's ``chromium`` package, installed by ``make system-deps``) is driven by
Playwright through its executable path; Playwright's own browser download is never used. The worker runs
tests/e2e/table_app/counting.py: a ``pause`` record holds its agent until ``GET /resume/``. The test reads
what a user sees on ``/lag/`` (the agent's row: badge and lag; the partitions' rows) and saves a
screenshot of the paused and of the resumed page under ``test-artifacts/`` at the repository root.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from playwright.async_api import Page, async_playwright

from tests.e2e.table_app.worker import TableWorker
from tests.integration.test_web_lag import produce, wait_for
from tests.support.stack import RunningStack
from tests.support.worker import REPO, worker_env

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # with the next two: no connections out (refused on closed networks)
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "test-artifacts"
AGENT = "tests.e2e.table_app.counting.count"
PARTITIONS = 2

T = TypeVar("T")


async def poll_page(
    page: Page, read: Callable[[Page], Awaitable[T]], done: Callable[[T], bool], what: str, wait: float = 30.0
) -> T:
    """Reload ``page`` until what ``read`` sees on it satisfies ``done``; that reading."""
    deadline = time.monotonic() + wait
    seen: T | None = None
    while time.monotonic() < deadline:
        await page.reload()
        seen = await read(page)
        if done(seen):
            return seen
        await asyncio.sleep(0.5)
    raise TimeoutError(f"{what}; last seen on the page: {seen!r}")


async def agent_row(page: Page) -> tuple[str, int] | None:
    """(badge, lag) of the agent's row in the page's agents table (None when the row is not shown)."""
    rows = page.locator("h2:text-is('Agents') + table tr").filter(has_text=AGENT)
    if await rows.count() != 1:
        return None
    row = rows.first
    cells = await row.locator("td").all_inner_texts()  # status, agent, stage, lag, time lag, sparkline, why
    return (await row.locator(".badge").inner_text()).strip(), int(cells[3])


async def partition_rows(page: Page) -> dict[int, tuple[str, str, int, int]]:
    """``{partition: (badge, committed, end, lag)}`` of the page's partitions table."""
    shown: dict[int, tuple[str, str, int, int]] = {}
    rows = page.locator("h2:text-is('Partitions') + table tr").filter(has=page.locator("td"))
    for i in range(await rows.count()):
        # status, topic, partition, committed, end, lag, time lag, sparkline, why
        cells = await rows.nth(i).locator("td").all_inner_texts()
        shown[int(cells[2])] = (cells[0].strip(), cells[3], int(cells[4]), int(cells[5]))
    return shown


@pytest.fixture
def chromium() -> str:
    """Debian's Chromium (installed by ``make system-deps``); the test fails, not skips, without it."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make system-deps` installs Debian's chromium"
    ARTIFACTS.mkdir(exist_ok=True)
    return str(CHROMIUM)


async def test_lag_page_in_a_browser_shows_a_paused_consumer_and_its_recovery(
    stack: RunningStack, chromium: str, tmp_path: Path
) -> None:
    env = worker_env(
        stack,
        tmp_path,
        TABLE_APP_PARTITIONS=str(PARTITIONS),
        CARRYOVER_LAG_SAMPLE_SECONDS="0.5",
        CARRYOVER_LAG_WINDOW_SECONDS="4",
    )
    topic = env["CARRYOVER_TOPIC_PREFIX"] + "counts.in"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()
    worker = TableWorker(env=env, log_path=tmp_path / "worker.log")
    paused_png, resumed_png = ARTIFACTS / "lag-page-paused.png", ARTIFACTS / "lag-page-resumed.png"

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            await asyncio.to_thread(worker.start)
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            await page.goto(f"http://127.0.0.1:{worker.web_port}/lag/")

            # A consumer that keeps up: three records per partition, processed, committed: OK, lag 0.
            await produce(stack.bootstrap, topic, dict.fromkeys(range(PARTITIONS), 3))

            async def processed() -> bool:
                counts = (await asyncio.to_thread(worker.counts))["counts"]
                return counts == {f"k{p}": 3 for p in range(PARTITIONS)}

            await wait_for(processed, "the worker did not process the first records")
            await poll_page(page, agent_row, lambda row: row == ("OK", 0), "the agent never showed OK, lag 0")
            await poll_page(
                page,
                partition_rows,
                lambda rows: rows == {p: ("OK", "3", 3, 0) for p in range(PARTITIONS)},
                "the partitions never showed their 3 records committed",
            )

            # The consumer pauses on partition 0; five more records per partition queue up behind it.
            await produce(stack.bootstrap, topic, {0: 1}, value=b"pause")

            async def paused() -> bool:
                return bool((await asyncio.to_thread(worker.counts))["counts"].get("paused") == 1)

            await wait_for(paused, "the agent never reached the pause record")
            await produce(stack.bootstrap, topic, dict.fromkeys(range(PARTITIONS), 5))
            # lag: partition 0 the pause record and the 5 behind it, partition 1 its 5
            status, lag = await poll_page(
                page,
                agent_row,
                lambda row: row is not None and row[0] in ("WARN", "STALL") and row[1] == 11,
                "the paused agent never showed WARN or STALL with its lag",
            )
            # committed offsets stand still (the pause record is not committed), the ends moved on; each
            # partition turns WARN / STALL once its own window shows it (partition 1's lag appeared at once,
            # so it can still be OK when the agent's row already is not)
            await poll_page(
                page,
                partition_rows,
                lambda rows: {p: row[1:] for p, row in rows.items()} == {0: ("3", 9, 6), 1: ("3", 8, 5)}
                and {row[0] for row in rows.values()} <= {"WARN", "STALL"},
                "the partitions never showed their committed offsets standing still as WARN or STALL",
            )
            await page.screenshot(path=str(paused_png), full_page=True)
            print(f"\nlag page, agent paused ({status}, lag {lag}): {paused_png}")  # noqa: T201

            # Resumed: the backlog drains, the page shows the agent OK with lag 0 again.
            resumed = await asyncio.to_thread(worker.get_json, "/resume/")
            assert resumed == {"resumed": True, "was_paused": True}
            await poll_page(page, agent_row, lambda row: row == ("OK", 0), "the agent never came back to OK")
            assert await partition_rows(page) == {0: ("OK", "9", 9, 0), 1: ("OK", "8", 8, 0)}
            await page.screenshot(path=str(resumed_png), full_page=True)
            print(f"lag page, agent resumed (OK, lag 0): {resumed_png}")  # noqa: T201
        finally:
            await browser.close()
            worker.kill()
