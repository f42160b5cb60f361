"""Every carryover setting, declared once: environment variable, default, meaning.

Settings are read from the environment when :func:`load` is called (the Faust app calls it once at
import).  ``carryover settings`` prints them as the README's configuration table, so the table and
the code cannot drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Generic, TypeVar

T = TypeVar("T")

ROLES: tuple[str, ...] = ("ingest", "normalize", "state", "webhooks", "archive")
"""Roles a worker can run (agents.ROLES registers each, in this order). ``webhooks`` and ``archive`` need
``state`` in the same worker (the fan-in reads the conversation state table locally; the archive closes
windows inside the state stage)."""
RECORD_FRAMING_BYTES = 1024
"""Kafka's own framing of one record inside a request (batch header, varints): a safe upper bound."""
RECORD_HEADROOM_BYTES = 8192 + RECORD_FRAMING_BYTES
"""What a staging record may grow by as a dead letter (app.dead_letters.DEAD_LETTER_OVERHEAD) plus framing."""


class SettingsError(ValueError):
    """A setting has a value carryover cannot use; the message says which and how to fix it."""


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true/false, got {raw!r}")


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


NORMALIZE_PATHS = ("batch", "agent")


def _normalize_path(raw: str) -> str:
    value = raw.strip().lower()
    if value not in NORMALIZE_PATHS:
        raise ValueError(f"expected one of {', '.join(NORMALIZE_PATHS)}, got {raw!r}")
    return value


def _roles(raw: str) -> tuple[str, ...]:
    roles = _csv(raw)
    unknown = [role for role in roles if role not in ROLES]
    if unknown:
        raise ValueError(f"unknown role(s) {', '.join(unknown)}; choose from {', '.join(ROLES)}")
    return roles


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One declared setting: where it comes from, what it defaults to and what it means."""

    env: str
    default: T
    doc: str
    parse: Callable[[str], T]

    def read(self, environ: Mapping[str, str]) -> T:
        """The setting's value in ``environ``, or its default; a bad value names the variable."""
        raw = environ.get(self.env)
        if raw is None:
            return self.default
        try:
            return self.parse(raw)
        except ValueError as exc:
            raise SettingsError(f"{self.env}={raw!r} is not valid: {exc}") from None


def setting(env: str, default: T, doc: str, parse: Callable[[str], T], *, secret: bool = False) -> Any:
    """Declare a field of :class:`Settings` backed by the environment variable ``env``.

    A ``secret`` setting is left out of the settings' ``repr`` (so out of logs and tracebacks).
    """
    return field(default=default, metadata={"setting": Setting(env, default, doc, parse)}, repr=not secret)


@dataclass(frozen=True)
class Settings:
    """carryover's configuration. Construct with :func:`load`."""

    # --- Kafka ---------------------------------------------------------------------------------
    broker: str = setting(
        "CARRYOVER_BROKER",
        "kafka://127.0.0.1:19092",
        "Kafka bootstrap URL(s) for Faust, comma separated.",
        str,
    )
    local_broker: bool = setting(
        "CARRYOVER_LOCAL_BROKER",
        False,
        "Turn on the Tansu compatibility layer (end-offset correction, no idempotent producer, short "
        "session timeout). Only for the embedded local broker; keep off against real Kafka.",
        _bool,
    )
    topic_prefix: str = setting(
        "CARRYOVER_TOPIC_PREFIX",
        "",
        "Prepended to every topic name (namespaces an environment or a test on a shared cluster).",
        str,
    )
    topic_replicas: int = setting(
        "CARRYOVER_TOPIC_REPLICAS",
        1,
        "Replication factor for topics carryover creates (3 on real Kafka).",
        int,
    )
    kafka_max_record_bytes: int = setting(
        "CARRYOVER_KAFKA_MAX_RECORD_BYTES",
        1_048_576,
        "Largest record carryover's producers send (their max_request_size); keep at or under the "
        "broker's message.max.bytes. Canonical records over it are dead-lettered with reason too_large.",
        int,
    )
    schema_registry_url: str = setting(
        "CARRYOVER_SCHEMA_REGISTRY_URL",
        "",
        "Confluent Schema Registry URL (required by the normalize role); mock://NAME is an in-process "
        "registry for development and tests (the local stack's environment sets it).",
        str,
    )
    schema_auto_register: bool = setting(
        "CARRYOVER_SCHEMA_AUTO_REGISTER",
        False,
        "Register the catalog's schemas at start when missing (always on for mock://). In production run "
        "`carryover catalog deploy` in the release instead.",
        _bool,
    )
    # --- Worker --------------------------------------------------------------------------------
    app_id: str = setting(
        "CARRYOVER_APP_ID", "carryover", "Faust app id (consumer group, table topics).", str
    )
    roles: tuple[str, ...] = setting(
        "CARRYOVER_ROLES",
        ROLES,
        "Comma separated roles this worker runs: ingest, normalize, state, webhooks, archive (webhooks and "
        "archive need state in the same worker).",
        _roles,
    )
    data_dir: Path = setting(
        "CARRYOVER_DATA_DIR", Path("var/worker"), "Faust data directory (table stores, offsets).", Path
    )
    store: str = setting(
        "CARRYOVER_STORE",
        "rocksdb://",
        "Faust table store: rocksdb:// (production: tables on disk, recovery resumes from the local copy) "
        "or memory:// (tests and demos: every restart re-reads the changelogs).",
        str,
    )
    standby_replicas: int = setting(
        "CARRYOVER_STANDBY_REPLICAS",
        1,
        "Standby copies of each table partition kept up to date on other workers; a failover then "
        "recovers from the standby's copy instead of re-reading the changelog (needs rocksdb://).",
        int,
    )
    recovery_delay_seconds: float = setting(
        "CARRYOVER_RECOVERY_DELAY_SECONDS",
        3.0,
        "Pause after a rebalance before tables recover and agents resume (lets a rolling restart "
        "settle into one rebalance instead of many).",
        float,
    )
    rocksdb_block_cache_mib: int = setting(
        "CARRYOVER_ROCKSDB_BLOCK_CACHE_MIB",
        64,
        "RocksDB block cache per table partition, MiB (Faust's default is 2 GiB per partition).",
        int,
    )
    state_dedupe_window: int = setting(
        "CARRYOVER_STATE_DEDUPE_WINDOW",
        256,
        "Event ids of the most recent counted events (messages, edits, reactions, suppressions) each "
        "conversation remembers to count a re-sent event once; each id costs ~45 bytes in every write "
        "of the conversation's state (README: per-conversation state).",
        int,
    )
    admin_token: str = setting(
        "CARRYOVER_ADMIN_TOKEN",
        "",
        "Bearer token of the admin views (/state/..., /webhooks/...): `Authorization: Bearer <token>`. "
        "Empty: those views answer 503 until one is set. Never logged.",
        str,
        secret=True,
    )
    webhook_max_body_bytes: int = setting(
        "CARRYOVER_WEBHOOK_MAX_BODY_BYTES",
        262_144,
        "Largest webhook request body the receiver reads; larger ones are answered 413 before they are "
        "read. At most a third of CARRYOVER_KAFKA_MAX_RECORD_BYTES (the delivery record re-encodes it).",
        int,
    )
    webhook_replay_window_seconds: float = setting(
        "CARRYOVER_WEBHOOK_REPLAY_WINDOW_SECONDS",
        3600.0,
        "How long each worker's receiver remembers a delivery's signature / webhook-id to answer a replay "
        "202 without writing it again (at least 600: twice the Standard Webhooks tolerance). The fan-in "
        "also skips delivery ids it processed, whichever worker received them.",
        float,
    )
    # --- Archive -------------------------------------------------------------------------------
    archive_idle_seconds: float = setting(
        "CARRYOVER_ARCHIVE_IDLE_SECONDS",
        60.0,
        "A conversation-events partition that received nothing for this long (wall clock) gets a tick "
        "carrying the wall-clock time, so its archive windows close on wall-clock time while it is idle.",
        float,
    )
    archive_sse_kms_key: str = setting(
        "CARRYOVER_ARCHIVE_SSE_KMS_KEY",
        "alias/carryover-archive-{tenant}",
        "KMS key of S3 archive objects (SSE-KMS), {tenant} replaced by the tenant id; empty: the bucket's "
        "default encryption.",
        str,
    )
    web_host: str = setting("CARRYOVER_WEB_HOST", "127.0.0.1", "Host the worker's web server binds.", str)
    web_bind: str = setting(
        "CARRYOVER_WEB_BIND",
        "",
        "Address the web server binds when it differs from the one other workers reach it at "
        "(CARRYOVER_WEB_HOST, which Faust's router advertises): in Kubernetes bind 0.0.0.0 and advertise the "
        "pod's DNS name. Empty: bind CARRYOVER_WEB_HOST.",
        str,
    )
    web_port: int = setting("CARRYOVER_WEB_PORT", 6066, "Port of the worker's web server (lag page).", int)
    producer_linger_ms: float = setting(
        "CARRYOVER_PRODUCER_LINGER_MS",
        25.0,
        "How long the workers' Kafka producer waits to fill a batch before sending (Faust's default is 0: "
        "one request per record under light load). Agents send record by record over many partitions: "
        "25 ms gave normalize 1.22x the records/s of 5 ms and half the broker CPU, for +20 ms latency.",
        float,
    )
    lag_sample_seconds: float = setting(
        "CARRYOVER_LAG_SAMPLE_SECONDS",
        5.0,
        "How often the lag monitor reads the app's committed and end offsets (one set of Kafka clients "
        "per worker, whatever the number of lag page requests).",
        float,
    )
    lag_window_seconds: float = setting(
        "CARRYOVER_LAG_WINDOW_SECONDS",
        60.0,
        "Evaluation window of the lag status: STALL when the committed offset did not move over it with "
        "lag, WARN when lag grew over all of it.",
        float,
    )
    consumer_fetch_max_wait_ms: int = setting(
        "CARRYOVER_CONSUMER_FETCH_MAX_WAIT_MS",
        100,
        "Longest time a worker's fetch waits on the broker for records (Faust hard-codes 1500: on a quiet "
        "partition a new record can wait that long). Lower: less latency, more idle fetch requests.",
        int,
    )
    dedupe_window_seconds: int = setting(
        "CARRYOVER_DEDUPE_WINDOW_SECONDS",
        3600,
        "How long (staging record time) a source message id is remembered to drop redelivered duplicates; "
        "0 turns dedupe off (consumers then rely on the deterministic ce_id).",
        int,
    )
    normalize_path: str = setting(
        "CARRYOVER_NORMALIZE_PATH",
        "batch",
        "How the normalize role reads staging: batch (a service in the worker: fetch a batch, normalize, "
        "send, await every ack, commit; faster, bench/README.md) or agent (a Faust agent, one event at a "
        "time). Both keep the same guarantees, dedupe window and lag page entry.",
        _normalize_path,
    )
    # --- Ingestion -----------------------------------------------------------------------------
    sqs_queue_prefix: str = setting(
        "CARRYOVER_SQS_QUEUE_PREFIX",
        "carryover-legacy-",
        "Queues whose name starts with this are ingested.",
        str,
    )
    pubsub_project: str = setting(
        "CARRYOVER_PUBSUB_PROJECT", "carryover-local", "Google Cloud project holding the subscriptions.", str
    )
    pubsub_subscription_prefix: str = setting(
        "CARRYOVER_PUBSUB_SUBSCRIPTION_PREFIX",
        "carryover-legacy-",
        "Subscriptions whose name starts with this are ingested.",
        str,
    )
    tenant_source: str = setting(
        "CARRYOVER_TENANT_SOURCE",
        "name",
        "Where a landed message's tenant comes from: name (queue/subscription name minus the prefix), "
        "topic_arn (SNS topic name minus the prefix) or attribute (the message attribute below).",
        str,
    )
    tenant_attribute: str = setting(
        "CARRYOVER_TENANT_ATTRIBUTE", "tenantId", "Message attribute holding the tenant id.", str
    )
    discovery_interval: float = setting(
        "CARRYOVER_DISCOVERY_INTERVAL_SECONDS",
        30.0,
        "How often queues and subscriptions are re-listed (new tenants picked up, deleted ones dropped).",
        float,
    )
    max_in_flight: int = setting(
        "CARRYOVER_MAX_IN_FLIGHT",
        5000,
        "Messages received but not yet acknowledged at the source, per worker (back-pressure).",
        int,
    )
    staging_admission_seconds: float = setting(
        "CARRYOVER_STAGING_ADMISSION_SECONDS",
        1.0,
        "Staging admission target: a source receiving above its fair share of normalize's measured "
        "consumption is held in its own queue while staging's backlog is at or above this many seconds of "
        "that consumption (at least 500 records); sources at or below their share are always admitted, so a "
        "tenant's backlog never queues in staging in front of the others. 0 turns admission control off "
        "(README, Ordering, and noisy tenants).",
        float,
    )
    max_message_bytes: int = setting(
        "CARRYOVER_MAX_MESSAGE_BYTES",
        900_000,
        "Largest staging record (payload plus attribute headers) landed; larger ones are dead-lettered "
        "with reason too_large, their first bytes and the whole original's SHA-256. Must leave room for the "
        "dead-letter headers under CARRYOVER_KAFKA_MAX_RECORD_BYTES.",
        int,
    )
    shutdown_grace_seconds: float = setting(
        "CARRYOVER_SHUTDOWN_GRACE_SECONDS",
        20.0,
        "On SIGTERM, how long messages in flight may take to land before they are released back to their "
        "source; keep it under the chart's terminationGracePeriodSeconds (30) minus Faust's own stop.",
        float,
    )
    sqs_visibility_timeout: int = setting(
        "CARRYOVER_SQS_VISIBILITY_TIMEOUT",
        30,
        "Visibility timeout (s) asked for on receive; in-flight messages are extended at half of it.",
        int,
    )
    pubsub_ack_deadline: int = setting(
        "CARRYOVER_PUBSUB_ACK_DEADLINE",
        30,
        "Ack deadline (s) for pulled messages; in-flight messages are extended at half of it.",
        int,
    )
    pubsub_idle_backoff_seconds: float = setting(
        "CARRYOVER_PUBSUB_IDLE_BACKOFF_SECONDS",
        1.0,
        "Longest wait between two pulls of a subscription that brought no message for "
        "CARRYOVER_PUBSUB_ACTIVE_SECONDS (an empty pull waits 50 ms doubling up to it): a quiet tenant's "
        "first message can wait this long. Each idle subscription costs about 1/this empty pulls per second.",
        float,
    )
    pubsub_active_backoff_seconds: float = setting(
        "CARRYOVER_PUBSUB_ACTIVE_BACKOFF_SECONDS",
        0.2,
        "Longest wait between two pulls of a subscription that brought messages within "
        "CARRYOVER_PUBSUB_ACTIVE_SECONDS: the most a publishing tenant's message waits in its subscription "
        "(Pub/Sub's REST pull does not hold the request for the emulator, so carryover pulls again). Each "
        "active subscription with nothing waiting costs about 1/this empty pulls per second.",
        float,
    )
    pubsub_active_seconds: float = setting(
        "CARRYOVER_PUBSUB_ACTIVE_SECONDS",
        60.0,
        "How long after its last message a subscription counts as active "
        "(CARRYOVER_PUBSUB_ACTIVE_BACKOFF_SECONDS applies).",
        float,
    )
    test_fail_every_nth_send: int = setting(
        "CARRYOVER_TEST_FAIL_EVERY_NTH_SEND",
        0,
        "Fault injection for the ingest fault tests only: every Nth staging write fails as if Kafka had "
        "refused it (0 = off). Never set it in production.",
        int,
    )
    # --- Keys ----------------------------------------------------------------------------------
    key_provider: str = setting(
        "CARRYOVER_KEY_PROVIDER",
        "local",
        "Tenant key provider: local (key file) or kms (AWS KMS envelope).",
        str,
    )
    key_file: Path = setting(
        "CARRYOVER_KEY_FILE",
        Path("var/keys.json"),
        "Tenant key file (local keys, or KMS-wrapped data keys).",
        Path,
    )
    key_cache_ttl: float = setting(
        "CARRYOVER_KEY_CACHE_TTL_SECONDS", 300.0, "How long unwrapped tenant keys stay cached.", float
    )
    # --- Ecosystem variables (their own names) ---------------------------------------------------
    aws_endpoint_url: str = setting(
        "AWS_ENDPOINT_URL", "", "AWS endpoint override (moto's server locally); empty means real AWS.", str
    )
    aws_region: str = setting("AWS_DEFAULT_REGION", "us-east-1", "AWS region.", str)
    pubsub_emulator_host: str = setting(
        "PUBSUB_EMULATOR_HOST", "", "host:port of Google's Pub/Sub emulator; empty means real Pub/Sub.", str
    )
    # --- Local stack -----------------------------------------------------------------------------
    stack_dir: Path = setting(
        "CARRYOVER_STACK_DIR", Path("var/stack"), "Where `carryover stack` keeps logs and PIDs.", Path
    )
    stack_kafka_port: int = setting("CARRYOVER_STACK_KAFKA_PORT", 19092, "Local broker port.", int)
    stack_moto_port: int = setting(
        "CARRYOVER_STACK_MOTO_PORT", 15000, "moto server port (SQS/SNS/KMS/S3).", int
    )
    stack_pubsub_port: int = setting("CARRYOVER_STACK_PUBSUB_PORT", 18085, "Pub/Sub emulator port.", int)

    def __post_init__(self) -> None:
        if self.standby_replicas < 0:
            raise SettingsError(f"CARRYOVER_STANDBY_REPLICAS={self.standby_replicas}: use 0 or more")
        if "archive" in self.roles and "state" not in self.roles:
            raise SettingsError(
                "CARRYOVER_ROLES has archive without state: the archive runs inside the state stage; "
                "add state"
            )
        if self.archive_idle_seconds <= 0:
            raise SettingsError(
                f"CARRYOVER_ARCHIVE_IDLE_SECONDS={self.archive_idle_seconds}: use more than 0"
            )
        for name, value in (
            ("CARRYOVER_PUBSUB_IDLE_BACKOFF_SECONDS", self.pubsub_idle_backoff_seconds),
            ("CARRYOVER_PUBSUB_ACTIVE_BACKOFF_SECONDS", self.pubsub_active_backoff_seconds),
        ):
            if not 0.05 <= value <= 60:
                raise SettingsError(f"{name}={value}: use 0.05 to 60 seconds (50 ms is the first back-off)")
        if self.consumer_fetch_max_wait_ms < 1:
            raise SettingsError(
                f"CARRYOVER_CONSUMER_FETCH_MAX_WAIT_MS={self.consumer_fetch_max_wait_ms}: use 1 or more"
            )
        if self.state_dedupe_window < 1:
            raise SettingsError(f"CARRYOVER_STATE_DEDUPE_WINDOW={self.state_dedupe_window}: use 1 or more")
        if "webhooks" in self.roles and "state" not in self.roles:
            raise SettingsError(
                f"CARRYOVER_ROLES={','.join(self.roles)}: the webhooks role needs the state role in the same "
                "worker (its fan-in reads conversation state locally); add state"
            )
        if not 1024 <= self.webhook_max_body_bytes <= self.kafka_max_record_bytes // 3:
            raise SettingsError(
                f"CARRYOVER_WEBHOOK_MAX_BODY_BYTES={self.webhook_max_body_bytes}: use 1024 to "
                f"{self.kafka_max_record_bytes // 3} (a third of CARRYOVER_KAFKA_MAX_RECORD_BYTES)"
            )
        if self.webhook_replay_window_seconds < 600:
            raise SettingsError(
                f"CARRYOVER_WEBHOOK_REPLAY_WINDOW_SECONDS={self.webhook_replay_window_seconds:g}: use 600 or "
                "more (twice the 300 s Standard Webhooks timestamp tolerance)"
            )
        headroom = self.kafka_max_record_bytes - self.max_message_bytes
        if headroom < RECORD_HEADROOM_BYTES:
            raise SettingsError(
                f"CARRYOVER_MAX_MESSAGE_BYTES={self.max_message_bytes} leaves {headroom} bytes under "
                f"CARRYOVER_KAFKA_MAX_RECORD_BYTES={self.kafka_max_record_bytes}; a dead letter needs "
                f"{RECORD_HEADROOM_BYTES}: lower CARRYOVER_MAX_MESSAGE_BYTES to at most "
                f"{self.kafka_max_record_bytes - RECORD_HEADROOM_BYTES}"
            )

    @property
    def max_canonical_bytes(self) -> int:
        """Largest canonical record (value plus headers) normalize sends; larger ones are dead-lettered."""
        return self.kafka_max_record_bytes - RECORD_FRAMING_BYTES

    def has_role(self, role: str) -> bool:
        """True when this worker runs ``role``."""
        return role in self.roles

    @property
    def bootstrap_servers(self) -> str:
        """The broker URL(s) as aiokafka's ``host:port[,host:port]``."""
        return ",".join(url.split("://", 1)[-1] for url in self.broker.split(","))


def declared() -> Iterator[tuple[str, Setting[Any]]]:
    """Every declared setting as (attribute name, declaration), in declaration order."""
    for f in fields(Settings):
        yield f.name, f.metadata["setting"]


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every setting from ``environ`` (default: the process environment)."""
    env = os.environ if environ is None else environ
    return Settings(**{name: decl.read(env) for name, decl in declared()})


def markdown_table() -> str:
    """The README's configuration table."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for _, decl in declared():
        default = ",".join(decl.default) if isinstance(decl.default, tuple) else decl.default
        rows.append(f"| `{decl.env}` | `{default}` | {decl.doc} |")
    return "\n".join(rows)
