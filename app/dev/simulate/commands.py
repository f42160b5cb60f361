"""`carryover simulate`: realistic legacy traffic into SNS/SQS and Pub/Sub, with a ground-truth file.

Creates the tenants' resources on both clouds if missing (idempotent), makes sure every simulated tenant
has keys in the key file, then publishes at ``--rate`` events/s for ``--duration`` seconds (0: until
interrupted), writing one ground-truth line per publication: what must come out of the canonical topics,
or which dead-letter reason it must get.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import defaultdict
from pathlib import Path

from app.settings import Settings


def tenant_names(count: int, prefix: str) -> list[str]:
    """``count`` tenant ids: prefix + zero-padded number."""
    return [f"{prefix}{i:03d}" for i in range(count)]


def ensure_keys(key_file: Path, tenants: list[str]) -> None:
    """Make sure every tenant has keys in the key file (development keys are generated for new ones)."""
    from app.crypto.keyfile import generate_key_file, read_key_file, write_key_file  # noqa: PLC0415

    if not key_file.exists():
        generate_key_file(key_file, tenants)
        return
    existing = read_key_file(key_file)
    missing = [t for t in tenants if t not in existing]
    if missing:
        scratch = key_file.with_suffix(".new.json")
        generate_key_file(scratch, missing)
        existing.update(read_key_file(scratch))
        scratch.unlink()
        write_key_file(key_file, existing)


async def simulate(
    settings: Settings,
    *,
    tenants: list[str],
    conversations: int,
    rate: float,
    duration: float,
    bad_fraction: float,
    ground_truth: Path,
    seed: int,
    say: object = print,
) -> int:
    """Publish simulated traffic; returns the number of publications."""
    from app.crypto.keyfile import LocalKeyFileProvider  # noqa: PLC0415
    from app.crypto.keyring import Keyring  # noqa: PLC0415
    from app.dev.simulate.publish import LegacyMessage, Publisher  # noqa: PLC0415
    from app.dev.simulate.traffic import TrafficConfig, TrafficGenerator  # noqa: PLC0415
    from app.dev.stack.resources import create_demo_tenants  # noqa: PLC0415

    assert callable(say)
    ensure_keys(settings.key_file, tenants)
    keys = Keyring.static(await LocalKeyFileProvider(settings.key_file).load())
    await create_demo_tenants(tenants, project=settings.pubsub_project)
    generator = TrafficGenerator(
        TrafficConfig(
            tenants=tenants, conversations_per_tenant=conversations, bad_fraction=bad_fraction, seed=seed
        ),
        keys,
    )
    ground_truth.parent.mkdir(parents=True, exist_ok=True)
    published = 0
    dead = 0
    started = last_report = time.monotonic()
    tick = 0.2
    with ground_truth.open("a") as truth:
        async with Publisher(project=settings.pubsub_project) as publisher:
            while duration <= 0 or time.monotonic() - started < duration:
                due = int(rate * (time.monotonic() - started + tick)) - published
                batch = generator.take(max(due, 0))
                groups: dict[tuple[str, str], list[LegacyMessage]] = defaultdict(list)
                for publication in batch:
                    groups[(publication.cloud, publication.tenant_id)].append(
                        LegacyMessage(publication.body, dict(publication.attributes))
                    )
                await asyncio.gather(
                    *(publisher.publish(cloud, tenant, msgs) for (cloud, tenant), msgs in groups.items())  # type: ignore[arg-type]
                )
                for publication in batch:
                    truth.write(json.dumps(publication.ground_truth(), sort_keys=True) + "\n")
                    dead += publication.dead_letter_reason is not None
                truth.flush()
                published += len(batch)
                if time.monotonic() - last_report >= 5:
                    last_report = time.monotonic()
                    say(
                        f"simulate: published {published} ({dead} meant for the DLQ) in "
                        f"{last_report - started:.0f}s; ground truth in {ground_truth}"
                    )
                await asyncio.sleep(tick)
    say(
        f"simulate: published {published} legacy events for {len(tenants)} tenants "
        f"({dead} meant for the DLQ); ground truth in {ground_truth}"
    )
    return published


def add_simulate_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `simulate` to the carryover command."""
    cmd = sub.add_parser("simulate", help="publish realistic legacy traffic to SNS/SQS and Pub/Sub")
    cmd.add_argument("--tenants", type=int, default=4, help="number of tenants (half on AWS, half on GCP)")
    cmd.add_argument("--tenant-prefix", default="tenant-", help="tenant ids are PREFIX000, PREFIX001, ...")
    cmd.add_argument("--conversations", type=int, default=3, help="conversations per tenant")
    cmd.add_argument("--rate", type=float, default=10.0, help="legacy events per second")
    cmd.add_argument("--duration", type=float, default=10.0, help="seconds to run; 0 runs until interrupted")
    cmd.add_argument(
        "--bad-fraction", type=float, default=0.0, help="share of payloads that must be dead-lettered"
    )
    cmd.add_argument("--ground-truth", type=Path, default=Path("var/ground-truth.jsonl"))
    cmd.add_argument("--seed", type=int, default=0)

    def handle(args: argparse.Namespace, settings: Settings) -> int:
        if not 0 <= args.bad_fraction <= 1:
            print("carryover simulate: --bad-fraction must be between 0 and 1")
            return 2
        try:
            asyncio.run(
                simulate(
                    settings,
                    tenants=tenant_names(args.tenants, args.tenant_prefix),
                    conversations=args.conversations,
                    rate=args.rate,
                    duration=args.duration,
                    bad_fraction=args.bad_fraction,
                    ground_truth=args.ground_truth,
                    seed=args.seed,
                )
            )
        except KeyboardInterrupt:
            pass
        return 0

    cmd.set_defaults(handler=handle)
