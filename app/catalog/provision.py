"""Topic provisioning: create the catalog's missing topics, report drift on the ones that exist.

The broker is only asked for what every Kafka-protocol broker answers (Metadata, CreateTopics,
DescribeConfigs). Drift (partition count, configs) is reported, never "fixed": shrinking partitions is
impossible, growing them re-keys tenants, and the local broker has no CreatePartitions/AlterConfigs.
A broker that cannot describe configs yields "unknown" instead of a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from app.catalog.model import Catalog, TopicSpec

TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True)
class TopicStatus:
    """The outcome for one topic."""

    name: str
    action: str  # "created", "would create", "exists", "failed"
    drift: tuple[str, ...] = ()
    error: str | None = None


@dataclass
class ProvisionReport:
    """What apply_topics found and did, one entry per catalog topic."""

    dry_run: bool
    topics: list[TopicStatus] = field(default_factory=list)

    def with_action(self, action: str) -> list[str]:
        """Names of the topics with ``action``."""
        return [t.name for t in self.topics if t.action == action]

    @property
    def drifted(self) -> list[TopicStatus]:
        """Existing topics whose broker state differs from the catalog (or could not be read)."""
        return [t for t in self.topics if t.drift]

    @property
    def ok(self) -> bool:
        """True when nothing failed (drift is reported, not an error)."""
        return not self.with_action("failed")

    def summary(self) -> str:
        """Human-readable lines for the CLI."""
        lines = []
        for t in self.topics:
            lines.append(f"{t.action:12} {t.name}" + (f": {t.error}" if t.error else ""))
            lines += [f"{'':12}   drift: {d}" for d in t.drift]
        verb = "would create" if self.dry_run else "created"
        lines.append(
            f"{verb} {len(self.with_action('would create' if self.dry_run else 'created'))}, "
            f"existing {len(self.with_action('exists'))}, drifted {len(self.drifted)}, "
            f"failed {len(self.with_action('failed'))}"
        )
        return "\n".join(lines)


def config_drift(wanted: Mapping[str, str], reported: Mapping[str, str] | None) -> list[str]:
    """Lines describing how broker configs differ from the catalog's; ``None`` = broker could not say."""
    if reported is None:
        return [
            f"configs unknown ({', '.join(f'{k}={v}' for k, v in sorted(wanted.items()))} not verifiable)"
        ]
    lines = []
    for key, value in sorted(wanted.items()):
        actual = reported.get(key)
        if actual is None:
            lines.append(f"{key}: unknown (broker did not report it), catalog wants {value}")
        elif actual != value:
            lines.append(
                f"{key}: broker has {actual}, catalog wants {value} (change it with your Kafka tooling)"
            )
    return lines


def partition_drift(spec: TopicSpec, actual: int) -> list[str]:
    """A line when the broker's partition count differs from the catalog's."""
    if actual == spec.partitions:
        return []
    return [
        f"partitions: broker has {actual}, catalog wants {spec.partitions} (not changed automatically: "
        "it moves tenants between partitions; plan a migration)"
    ]


async def _describe_configs(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, dict[str, str] | None]:
    """topic -> its reported configs, None for each topic the broker could not describe."""
    if not names:
        return {}
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    except Exception:  # brokers without DescribeConfigs: report unknown, do not crash
        return dict.fromkeys(names)
    found: dict[str, dict[str, str] | None] = dict.fromkeys(names)
    for response in responses:
        obj: Any = response.to_object()
        for resource in obj.get("resources", []):
            if resource.get("error_code", 0) != 0:
                continue
            found[resource["resource_name"]] = {
                entry["config_names"]: entry["config_value"]
                for entry in resource.get("config_entries", [])
                if entry.get("config_value") is not None
            }
    return found


async def apply_topics(
    bootstrap: str,
    catalog: Catalog,
    *,
    dry_run: bool,
    prefix: str = "",
    replication_factor: int = 1,
) -> ProvisionReport:
    """Creates every catalog topic missing on ``bootstrap`` (names prefixed by ``prefix``); reports drift."""
    report = ProvisionReport(dry_run=dry_run)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="carryover-topics")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        specs = {prefix + spec.name: spec for spec in catalog.topics.values()}
        present = sorted(name for name in specs if name in existing)
        # describe only topics that exist: some brokers auto-create a topic named in a Metadata request
        partitions = (
            {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(present)}
            if present
            else {}
        )
        configs = await _describe_configs(admin, present)
        missing = [name for name in specs if name not in existing]
        created: dict[str, str | None] = {}
        if missing and not dry_run:
            response: Any = await admin.create_topics(
                [
                    NewTopic(
                        name, specs[name].partitions, replication_factor, topic_configs=specs[name].configs()
                    )
                    for name in missing
                ]
            )
            for topic, code, message, *_ in response.topic_errors:
                created[topic] = None if code in (0, TOPIC_ALREADY_EXISTS) else f"error {code}: {message}"
        for name, spec in specs.items():
            if name in existing:
                drift = partition_drift(spec, partitions.get(name, spec.partitions))
                drift += config_drift(spec.configs(), configs.get(name))
                report.topics.append(TopicStatus(name, "exists", tuple(drift)))
            elif dry_run:
                report.topics.append(TopicStatus(name, "would create"))
            elif created.get(name, "no answer from the broker") is None:
                report.topics.append(TopicStatus(name, "created"))
            else:
                report.topics.append(TopicStatus(name, "failed", error=created.get(name, "no answer")))
    finally:
        await admin.close()
    return report
