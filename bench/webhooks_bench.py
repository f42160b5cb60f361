"""Webhook benchmark: time to 202 at fixed request rates, and deliveries fanned in per second.

On a private local broker (Tansu), a real ``faust worker`` (roles ``state,webhooks``, memory store) serves
``POST /hooks/{hook_id}``. Next to it, in the same run, the **peer**: a bare aiohttp server in its own process
doing the same job with nothing else — check the Standard Webhooks HMAC, write the body to Kafka with an
aiokafka producer (acks=all, linger 5 ms), answer 202 after the broker's ack.

1. **Time to 202.** An open-loop generator (aiohttp client, this process) sends Standard-Webhooks-signed
   deliveries (each its own ``webhook-id``) on a fixed schedule, rate by rate, ``--seconds`` each. Latency is
   measured from the request's *scheduled* send time to the answer, so a server that falls behind shows it
   (no coordinated omission). Bodies and signatures are made before each step. Per rate: answers 202 and not,
   p50 / p99 / p99.9, and the lowest rate whose p99 is over 25 ms. Eight hooks (round robin) keep every
   request under its hook's rate limit.
2. **Fan-in.** ``--backlog`` delivery records written straight to ``webhooks.deliveries.v1`` before the
   fan-in reads them (its worker is started after); rate = deliveries turned into canonical messages per
   second, first to last, from ``/webhooks/stats`` polled every 0.2 s.

Run: ``python -m bench.webhooks_bench`` (~3 minutes); ``--quick`` for a smoke run.
The generator shares the machine's 2 vCPUs with the server under test and the broker: the rates here are
what *this box* sustains, not a server's ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import math
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import aiohttp

from app import topics as topic_names
from app.catalog.model import default_catalog
from app.catalog.provision import apply_topics
from app.crypto.keyfile import generate_key_file
from app.normalize.runtime import build_codec
from app.settings import load
from app.webhooks.delivery import DeliveryRecord
from bench.common import free_port, private_stack
from tests.support.kafka import produce_records
from tests.support.state import get_json
from tests.support.worker import Worker

TOKEN = "webhooks-bench-" + uuid.uuid4().hex
TENANT, ROOM, BOT = "acme", "room-bench", "bot-bench"
SECRET = "whsec_" + base64.b64encode(b"b" * 32).decode()
HOOKS = [f"bench-{i}" for i in range(8)]
P99_LIMIT_MS = 25.0


def quantile(values: list[float], q: float) -> float | None:
    """The q-th percentile (nearest rank; 99.9 is not 99 as ``bench.common.percentile`` would read it)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def signed(msg_id: str, body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signature = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest())
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": ts,
        "webhook-signature": f"v1,{signature.decode()}",
    }


async def open_loop(urls: list[str], rate: float, seconds: float) -> tuple[list[float], int, int]:
    """(latencies ms of 202s, 202 count, other count) for ``rate`` requests/s over ``seconds``."""
    count = int(rate * seconds)
    requests = []
    for i in range(count):
        msg_id = f"msg_{uuid.uuid4().hex}"
        body = json.dumps({"type": "bench", "title": f"delivery {i}", "n": i}).encode()
        requests.append((urls[i % len(urls)], body, signed(msg_id, body)))
    latencies: list[float] = []
    others = 0
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(scheduled: float, url: str, body: bytes, headers: dict[str, str]) -> None:
            nonlocal others
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    ok = resp.status == 202
            except aiohttp.ClientError:
                ok = False
            if ok:
                latencies.append((time.perf_counter() - scheduled) * 1000)
            else:
                others += 1

        start = time.perf_counter() + 0.2
        await asyncio.gather(*(one(start + i / rate, *req) for i, req in enumerate(requests)))
    return latencies, len(latencies), others


# -- the peer: the same job in a bare aiohttp server -----------------------------------------------------


def run_peer(port: int, bootstrap: str, topic: str) -> None:
    """A bare aiohttp receiver: Standard Webhooks HMAC check, aiokafka write with acks=all, 202 after ack."""
    from aiohttp import web  # noqa: PLC0415
    from aiokafka import AIOKafkaProducer  # noqa: PLC0415

    key = base64.b64decode(SECRET.removeprefix("whsec_"))

    async def main() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        await producer.start()

        async def receive(request: web.Request) -> web.Response:
            body = await request.read()
            msg_id, ts = request.headers["webhook-id"], request.headers["webhook-timestamp"]
            expected = base64.b64encode(
                hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
            )
            given = request.headers["webhook-signature"].split(",", 1)[1].encode()
            if not hmac.compare_digest(expected, given):
                return web.Response(status=401)
            json.loads(body)
            await (await producer.send(topic, body, key=f"{TENANT}/{ROOM}".encode()))
            return web.Response(status=202)

        app = web.Application()
        app.router.add_post("/hooks/{hook_id}", receive)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print("peer ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


# -- the run --------------------------------------------------------------------------------------------


def worker_environment(work: Path, stack_env: dict[str, str]) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {
        **os.environ,
        **stack_env,
        "CARRYOVER_APP_ID": f"webhooks-bench-{tag}",
        "CARRYOVER_TOPIC_PREFIX": f"b{tag}.",
        "CARRYOVER_DATA_DIR": str(work / f"worker-{tag}"),
        "CARRYOVER_ROLES": "state,webhooks",
        "CARRYOVER_STORE": "memory://",
        "CARRYOVER_KEY_FILE": str(generate_key_file(work / "keys.json", [TENANT])),
        "CARRYOVER_ADMIN_TOKEN": TOKEN,
        "CARRYOVER_RECOVERY_DELAY_SECONDS": "0.5",
        "PYTHONUNBUFFERED": "1",
    }


def prepare_room(env: dict[str, str], bootstrap: str) -> None:
    from tests.e2e.test_webhooks import room_records  # noqa: PLC0415 - the e2e test's canonical room

    prefix = env["CARRYOVER_TOPIC_PREFIX"]
    assert asyncio.run(apply_topics(bootstrap, default_catalog(), dry_run=False, prefix=prefix)).ok
    codec = asyncio.run(build_codec(load(env)))
    records = room_records(codec, TENANT, ROOM, [BOT])
    asyncio.run(produce_records(bootstrap, prefix + topic_names.CONVERSATIONS, records))


def create_hooks(port: int) -> None:
    for hook_id in HOOKS:
        definition = {
            "hook_id": hook_id,
            "tenant": TENANT,
            "conversation_id": ROOM,
            "bot_user_id": BOT,
            "auth_scheme": "standard",
            "secrets": [SECRET],
            "template_name": "generic_json",
            "rate_per_second": 1000,
            "rate_burst": 10000,
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/webhooks/hooks",
            data=json.dumps(definition).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=20) as resp:  # noqa: S310 - our own worker
            assert resp.status == 201


def fanned_in(port: int) -> int:
    """Deliveries the worker's fan-in finished: posted or dead-lettered (-1: no answer)."""
    status, stats = get_json(port, "/webhooks/stats", TOKEN)
    return int(stats["fanned_in"]) + int(stats["dead_lettered"]) if status == 200 else -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[25, 50, 100, 200, 400])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--backlog", type=int, default=3000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--peer", nargs=3, metavar=("PORT", "BOOTSTRAP", "TOPIC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        run_peer(int(args.peer[0]), args.peer[1], args.peer[2])
        return
    if args.quick:
        args.rates, args.seconds, args.backlog = [25, 100], 3.0, 300

    with private_stack("webhooks-bench", broker_only=True) as (work, stack_env):
        bootstrap = stack_env["CARRYOVER_BROKER"].split("://", 1)[-1]
        env = worker_environment(work, stack_env)
        prepare_room(env, bootstrap)
        worker = Worker(env=dict(env), log_path=work / "worker.log").start()
        peer_port = free_port()
        peer = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "bench.webhooks_bench",
                "--peer",
                str(peer_port),
                bootstrap,
                env["CARRYOVER_TOPIC_PREFIX"] + "peer.deliveries",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert peer.stdout is not None and "peer ready" in peer.stdout.readline()
            deadline = time.monotonic() + 60
            while get_json(worker.web_port, "/readyz", None)[0] != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            create_hooks(worker.web_port)
            targets = {
                "carryover worker": [f"http://127.0.0.1:{worker.web_port}/hooks/{h}" for h in HOOKS],
                "bare aiohttp + aiokafka (peer)": [f"http://127.0.0.1:{peer_port}/hooks/{h}" for h in HOOKS],
            }
            accepted = asyncio.run(open_loop(targets["carryover worker"], 20, 1.0))[1]  # warm-up
            asyncio.run(open_loop(targets["bare aiohttp + aiokafka (peer)"], 20, 1.0))
            rows = []
            for rate in args.rates:
                for name, urls in targets.items():
                    latencies, ok, others = asyncio.run(open_loop(urls, rate, args.seconds))
                    rows.append((name, rate, ok, others, latencies))
                    accepted += ok if name == "carryover worker" else 0
            print()
            print(
                f"time to 202, open loop, {args.seconds:g} s per rate (latency from the scheduled send time)"
            )
            print("| server | rate req/s | 202 | other | p50 ms | p99 ms | p99.9 ms |")
            print("|---|---:|---:|---:|---:|---:|---:|")
            crossing: dict[str, float | None] = {name: None for name in targets}
            for name, rate, ok, others, latencies in rows:
                p50, p99, p999 = (quantile(latencies, q) for q in (50, 99, 99.9))
                cells = " | ".join(f"{v or 0:.1f}" for v in (p50, p99, p999))
                print(f"| {name} | {rate:g} | {ok} | {others} | {cells} |")
                if crossing[name] is None and (p99 is None or p99 > P99_LIMIT_MS or others):
                    crossing[name] = rate
            for name, rate in crossing.items():
                said = (
                    f"{rate:g} req/s"
                    if rate is not None
                    else f"not reached (up to {max(args.rates):g} req/s)"
                )
                print(f"p99 over {P99_LIMIT_MS:g} ms first at: {name}: {said}")
            deadline = time.monotonic() + (30 if args.quick else 300)
            while fanned_in(worker.web_port) < accepted and time.monotonic() < deadline:
                time.sleep(0.5)  # the fan-in of what was accepted, before the backlog's run
            print("after the HTTP steps:", get_json(worker.web_port, "/webhooks/stats", TOKEN)[1], flush=True)
            worker.stop()

            # fan-in: a backlog of deliveries written before a fresh worker reads them
            deliveries = [
                DeliveryRecord(
                    hook_id=HOOKS[i % len(HOOKS)],
                    tenant=TENANT,
                    conversation_id=ROOM,
                    delivery_id=f"backlog-{i}",
                    event="bench",
                    payload={"title": f"backlog {i}", "n": i},
                    received_ms=int(time.time() * 1000),
                )
                for i in range(args.backlog)
            ]
            records = [(d.key, d.to_json(), []) for d in deliveries]
            topic = env["CARRYOVER_TOPIC_PREFIX"] + topic_names.WEBHOOK_DELIVERIES
            asyncio.run(produce_records(bootstrap, topic, records))  # type: ignore[arg-type]
            worker = Worker(env=dict(env), log_path=work / "worker2.log").start()
            base = None
            first = last = 0.0
            deadline = time.monotonic() + (60 if args.quick else 600)
            while time.monotonic() < deadline:
                done = fanned_in(worker.web_port)
                now = time.perf_counter()
                if done > 0 and base is None:
                    base, first = done, now
                if done >= args.backlog:
                    last = now
                    break
                time.sleep(0.2)
            stats = get_json(worker.web_port, "/webhooks/stats", TOKEN)[1]
            if base is not None and last > first:
                rate = (args.backlog - base) / (last - first)
                print(
                    f"\nfan-in: {args.backlog} deliveries -> {stats['fanned_in']} canonical MessageSent "
                    f"({stats['dead_lettered']} dead letters), {rate:.0f} deliveries/s"
                )
            else:
                print(f"\nfan-in: did not finish ({fanned_in(worker.web_port)} of {args.backlog}): {stats}")
        finally:
            for log in work.glob("worker*.log"):
                (Path("/tmp") / f"webhooks-bench-{log.name}").write_bytes(log.read_bytes())
            peer.terminate()
            peer.wait()
            worker.kill()


if __name__ == "__main__":
    main()
