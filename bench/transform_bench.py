"""Pure transform benchmark: :meth:`Normalizer.process` alone (decrypt, decode, map, re-encrypt, frame,
CloudEvents headers), no Kafka, no Faust, in this process.

The staging records are built first (seeded simulator traffic of 50 tenants, every legacy type, version
and encoding, 2 % bad payloads, as ingestion lands them), then the same N records go through one
``Normalizer`` ``--repeats`` times after ``--warmup`` untimed passes. Each pass is timed with
``time.perf_counter`` around the loop only; the rate is records / pass time. Prints the median, min and max
over the passes, and a SHA-256 over every output of one pass so that two trees can be shown to produce
the same bytes.

Run: ``python -m bench.transform_bench`` (~10 s); ``--records``, ``--repeats``, ``--profile`` (cProfile of
one pass, top functions by own time).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import pstats
import statistics
import sys
import time
from collections.abc import Sequence

from app.catalog.model import default_catalog
from app.catalog.wire import EnvelopeCodec
from app.crypto.keyring import Keyring, key_set
from app.dev.simulate.traffic import TrafficConfig, generate
from app.ingest.landing import legacy_headers, provenance_headers
from app.normalize.normalizer import Normalizer, Outgoing
from app.topics import DEAD_LETTERS, STAGING

RECEIVED_AT_MS = 1_767_225_600_000
StagingInput = tuple[bytes, bytes, list[tuple[str, bytes]], str]
"""key, value, headers, origin of one staging record."""


def keyring(tenants: Sequence[str]) -> Keyring:
    """Two keys per tenant (v1 retired but live, v2 current), fixed bytes."""
    return Keyring.static(
        key_set(
            {
                t: (
                    f"{t}/v2",
                    [(f"{t}/v1", bytes([i % 250 + 1]) * 32), (f"{t}/v2", bytes([i % 250 + 2]) * 32)],
                )
                for i, t in enumerate(tenants)
            }
        )
    )


def staging_records(count: int, tenants: Sequence[str], keys: Keyring, seed: int) -> list[StagingInput]:
    """``count`` simulated publications as ingestion lands them on staging."""
    config = TrafficConfig(tenants, conversations_per_tenant=4, bad_fraction=0.02, seed=seed)
    out = []
    for i, p in enumerate(generate(config, keys, count)):
        headers = provenance_headers(
            source="sqs" if p.cloud == "aws" else "pubsub",
            source_id=f"bench-{p.tenant_id}",
            source_message_id=p.publication_id,
            received_at_ms=RECEIVED_AT_MS + i,
            tenant=p.tenant_id,
        ) + legacy_headers([(name, value.encode()) for name, value in p.attributes.items()])
        out.append((p.tenant_id.encode(), p.body, headers, f"{STAGING}/{i % 6}/{i}"))
    return out


def build_normalizer(keys: Keyring) -> Normalizer:
    """A normalizer with fixed schema ids per canonical topic."""
    catalog = default_catalog()
    codec = EnvelopeCodec({t.name: 100 + i for i, t in enumerate(catalog.canonical_topics())}, catalog)
    return Normalizer(codec, keys, DEAD_LETTERS)


def one_pass(normalizer: Normalizer, records: Sequence[StagingInput]) -> list[Outgoing]:
    """Every record through the normalizer, outputs kept (as a caller would hand them to a producer)."""
    process = normalizer.process
    out: list[Outgoing] = []
    for key, value, headers, origin in records:
        out += process(key, value, headers, origin)
    return out


def outputs_sha256(outputs: Sequence[Outgoing]) -> str:
    """SHA-256 over every output's topic, key, value and headers, length-prefixed, in order."""
    sha = hashlib.sha256()
    for o in outputs:
        parts = [o.topic.encode(), o.key or b"", o.value]
        parts += [p for name, value in o.headers for p in (name.encode(), value)]
        for part in parts:
            sha.update(len(part).to_bytes(8, "big") + part)
    return sha.hexdigest()


def main(argv: list[str] | None = None) -> int:
    """Build the records, time the passes, print the rate."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--profile", action="store_true", help="cProfile one more pass, top 30 by own time")
    args = parser.parse_args(argv)
    tenants = [f"bench-tenant-{i:03d}" for i in range(args.tenants)]
    keys = keyring(tenants)
    records = staging_records(args.records, tenants, keys, args.seed)
    normalizer = build_normalizer(keys)
    outputs: list[Outgoing] = []
    for _ in range(args.warmup):
        outputs = one_pass(normalizer, records)
    rates = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        outputs = one_pass(normalizer, records)
        rates.append(len(records) / (time.perf_counter() - start))
    dead = sum(o.dead_letter for o in outputs)
    made = f"{len(outputs) - dead} canonical + {dead} dead letters"
    print(
        f"transform: {len(records)} staging records -> {made}; "
        f"records/s median {statistics.median(rates):.0f} (min {min(rates):.0f}, max {max(rates):.0f}, "
        f"{len(rates)} passes); outputs sha256 {outputs_sha256(outputs)[:16]}",
        flush=True,
    )
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        one_pass(normalizer, records)
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
