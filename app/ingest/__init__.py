"""Ingestion from the legacy backend's sources into ``legacy.staging.v1``.

* :mod:`app.ingest.landing` — pure: SNS envelope unwrapping, tenant derivation, headers, poison checks.
* :mod:`app.ingest.stats` — per-queue / per-subscription counters (plain dataclasses).
* :mod:`app.ingest.flow` — the in-flight cap shared by every source of a worker (back-pressure).
* :mod:`app.ingest.sink` — the Kafka writer: a landing is acknowledged only after Kafka acknowledged it.
* :mod:`app.ingest.port` — the source port: what the driver needs from a cloud queue service.
* :mod:`app.ingest.sqs` / :mod:`app.ingest.pubsub` — thin adapters (the port's two implementations).
* :mod:`app.ingest.driver` — the one driver: discovery, scheduling, landing, ack-after-Kafka, extension.
* :mod:`app.ingest.runner` — runs every configured source and the periodic summary log line.
"""
