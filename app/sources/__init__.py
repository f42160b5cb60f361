"""Ingestion from the legacy backend's sources into ``legacy.staging.v1``.

* :mod:`app.sources.landing` — pure: SNS envelope unwrapping, tenant derivation, headers, poison checks.
* :mod:`app.sources.stats` — per-queue / per-subscription counters (plain dataclasses).
* :mod:`app.sources.flow` — the in-flight cap shared by every source of a worker (back-pressure).
* :mod:`app.sources.sink` — the Kafka writer: a landing is acknowledged only after Kafka acknowledged it.
* :mod:`app.sources.sqs` / :mod:`app.sources.pubsub` — thin adapters: discover, receive, land, delete/ack.
* :mod:`app.sources.runner` — runs both adapters and the periodic summary log line.
"""
