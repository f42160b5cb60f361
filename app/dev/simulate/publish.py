"""Publish legacy payloads (bytes + attributes) the way a tenant's legacy backend does: to its SNS topic
(fanned out to its SQS queue) or to its Pub/Sub topic. Used by the simulator, tests and the benchmark.

SNS carries text only: a payload must be UTF-8 (the legacy backend base64-encodes binary protobuf);
attributes that are ``bytes`` travel as SNS Binary attributes, ``str`` ones as String attributes.
Pub/Sub attributes are strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from gcloud.aio.pubsub import PubsubMessage

from app.dev.stack.resources import AwsClients, aws_clients, default_project, gcp_clients, resource_name

Cloud = Literal["aws", "gcp"]
SNS_BATCH = 10
PUBSUB_BATCH = 500


@dataclass(frozen=True)
class LegacyMessage:
    """One legacy event as its backend publishes it."""

    payload: bytes
    attributes: Mapping[str, str | bytes] = field(default_factory=dict)


def sns_attributes(attributes: Mapping[str, str | bytes]) -> dict[str, dict[str, Any]]:
    """SNS MessageAttributes: bytes as Binary, everything else as String."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in attributes.items():
        if isinstance(value, bytes):
            out[name] = {"DataType": "Binary", "BinaryValue": value}
        else:
            out[name] = {"DataType": "String", "StringValue": str(value)}
    return out


class Publisher:
    """Open clients for both clouds; ``async with Publisher() as p: await p.publish("aws", "acme", msgs)``."""

    def __init__(self, *, project: str | None = None) -> None:
        self.project = project
        self._stack = AsyncExitStack()
        self._aws: AwsClients | None = None
        self._gcp: Any = None
        self._topic_arns: dict[str, str] = {}

    async def __aenter__(self) -> Publisher:
        self._aws = await self._stack.enter_async_context(aws_clients())
        self._gcp = await self._stack.enter_async_context(gcp_clients())
        self.project = self.project or default_project()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()

    async def topic_arn(self, tenant: str) -> str:
        """The tenant's SNS topic ARN (CreateTopic is idempotent and answers the ARN)."""
        if tenant not in self._topic_arns:
            assert self._aws is not None, "use Publisher as an async context manager"
            reply = await self._aws.sns.create_topic(Name=resource_name(tenant))
            self._topic_arns[tenant] = str(reply["TopicArn"])
        return self._topic_arns[tenant]

    async def publish(self, cloud: Cloud, tenant: str, messages: Sequence[LegacyMessage]) -> list[str]:
        """Publish ``messages`` in order to the tenant's topic on ``cloud``; returns the message ids."""
        if cloud == "aws":
            return await self._publish_sns(tenant, messages)
        return await self._publish_pubsub(tenant, messages)

    async def _publish_sns(self, tenant: str, messages: Sequence[LegacyMessage]) -> list[str]:
        assert self._aws is not None, "use Publisher as an async context manager"
        arn = await self.topic_arn(tenant)
        ids: list[str] = []
        for start in range(0, len(messages), SNS_BATCH):
            chunk = messages[start : start + SNS_BATCH]
            entries = []
            for i, message in enumerate(chunk):
                entry: dict[str, Any] = {"Id": str(i), "Message": message.payload.decode("utf-8")}
                if message.attributes:
                    entry["MessageAttributes"] = sns_attributes(message.attributes)
                entries.append(entry)
            reply = await self._aws.sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=entries)
            if reply.get("Failed"):
                raise RuntimeError(f"SNS publish to {arn} failed: {reply['Failed'][:3]}")
            by_id = {item["Id"]: item["MessageId"] for item in reply.get("Successful", [])}
            ids.extend(by_id[str(i)] for i in range(len(chunk)))
        return ids

    async def _publish_pubsub(self, tenant: str, messages: Sequence[LegacyMessage]) -> list[str]:
        assert self._gcp is not None and self.project, "use Publisher as an async context manager"
        publisher = self._gcp[0]
        topic = publisher.topic_path(self.project, resource_name(tenant))
        ids: list[str] = []
        for start in range(0, len(messages), PUBSUB_BATCH):
            chunk = messages[start : start + PUBSUB_BATCH]
            batch = [
                PubsubMessage(
                    m.payload,
                    **{k: v.decode() if isinstance(v, bytes) else str(v) for k, v in m.attributes.items()},
                )
                for m in chunk
            ]
            reply = await publisher.publish(topic, batch)
            ids.extend(str(i) for i in reply.get("messageIds", []))
        return ids


async def publish(cloud: Cloud, tenant: str, messages: Sequence[LegacyMessage]) -> list[str]:
    """One-shot :meth:`Publisher.publish` (opens and closes the clients)."""
    async with Publisher() as publisher:
        return await publisher.publish(cloud, tenant, messages)
