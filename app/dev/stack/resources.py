"""Per-tenant legacy resources on moto (SNS -> SQS) and on the Pub/Sub emulator; used by ``make run``,
the simulator, tests and the benchmark.

Names, for tenant ``T`` (a slug like ``acme-bank``):

* AWS: SNS topic ``carryover-legacy-T``; SQS queue ``carryover-legacy-T`` subscribed to it (raw delivery
  off unless asked); optional redrive queue ``carryover-legacy-T-dlq`` (maxReceiveCount 5).
* GCP (project = ``settings.pubsub_project`` unless given): topic and subscription ``carryover-legacy-T``.

Every create is idempotent. Clients follow ``AWS_ENDPOINT_URL`` / ``PUBSUB_EMULATOR_HOST``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from gcloud.aio.pubsub import PublisherClient, SubscriberClient

RESOURCE_PREFIX = "carryover-legacy-"
MAX_RECEIVE_COUNT = 5
CREATE_CONCURRENCY = 16


def resource_name(tenant: str) -> str:
    """The topic / queue / subscription name of ``tenant``."""
    return f"{RESOURCE_PREFIX}{tenant}"


def dlq_name(tenant: str) -> str:
    """The redrive queue name of ``tenant``."""
    return f"{resource_name(tenant)}-dlq"


def default_project() -> str:
    """The Pub/Sub project from carryover's settings."""
    from app.settings import load  # noqa: PLC0415 - only when no project is given

    return load().pubsub_project


@dataclass(frozen=True)
class AwsTenant:
    """What :func:`create_aws_tenant` made."""

    tenant: str
    topic_arn: str
    queue_url: str
    subscription_arn: str
    dlq_url: str | None


@dataclass(frozen=True)
class GcpTenant:
    """What :func:`create_gcp_tenant` made."""

    tenant: str
    topic_path: str
    subscription_path: str


@dataclass(frozen=True)
class AwsClients:
    """An open SNS and SQS client pair."""

    sns: Any
    sqs: Any


@asynccontextmanager
async def aws_clients(
    endpoint_url: str | None = None, region: str | None = None
) -> AsyncIterator[AwsClients]:
    """SNS and SQS clients pointed at ``endpoint_url`` (default: ``AWS_ENDPOINT_URL``)."""
    session = get_session()
    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    region = region or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    config = AioConfig(max_pool_connections=64)
    async with (
        session.create_client("sns", endpoint_url=endpoint, region_name=region, config=config) as sns,
        session.create_client("sqs", endpoint_url=endpoint, region_name=region, config=config) as sqs,
    ):
        yield AwsClients(sns, sqs)


@asynccontextmanager
async def gcp_clients(
    emulator_host: str | None = None,
) -> AsyncIterator[tuple[PublisherClient, SubscriberClient]]:
    """Publisher and subscriber clients on one HTTP session (default: ``PUBSUB_EMULATOR_HOST``)."""
    host = emulator_host or os.environ.get("PUBSUB_EMULATOR_HOST") or None
    api_root = f"http://{host}/v1" if host else None
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as http:
        publisher = PublisherClient(session=http, api_root=api_root)  # type: ignore[arg-type]
        subscriber = SubscriberClient(session=http, api_root=api_root)  # type: ignore[arg-type]
        yield publisher, subscriber


def _queue_policy(queue_arn: str, topic_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
                }
            ],
        }
    )


async def _queue_arn(sqs: Any, url: str) -> str:
    reply = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(reply["Attributes"]["QueueArn"])


async def create_aws_tenant(
    tenant: str,
    *,
    raw_delivery: bool = False,
    dlq: bool = True,
    clients: AwsClients | None = None,
) -> AwsTenant:
    """SNS topic + SQS queue subscribed to it (+ redrive queue) for ``tenant``; idempotent."""
    if clients is None:
        async with aws_clients() as opened:
            return await create_aws_tenant(tenant, raw_delivery=raw_delivery, dlq=dlq, clients=opened)
    sns, sqs = clients.sns, clients.sqs
    name = resource_name(tenant)
    topic_arn = str((await sns.create_topic(Name=name))["TopicArn"])
    dlq_url: str | None = None
    attributes: dict[str, str] = {}
    if dlq:
        dlq_url = str((await sqs.create_queue(QueueName=dlq_name(tenant)))["QueueUrl"])
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": await _queue_arn(sqs, dlq_url), "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
        )
    queue_url = str((await sqs.create_queue(QueueName=name))["QueueUrl"])
    queue_arn = await _queue_arn(sqs, queue_url)
    attributes["Policy"] = _queue_policy(queue_arn, topic_arn)
    await sqs.set_queue_attributes(QueueUrl=queue_url, Attributes=attributes)
    subscription = await sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true" if raw_delivery else "false"},
        ReturnSubscriptionArn=True,
    )
    return AwsTenant(tenant, topic_arn, queue_url, str(subscription["SubscriptionArn"]), dlq_url)


async def delete_aws_tenant(tenant: str, *, clients: AwsClients | None = None) -> None:
    """Remove the tenant's subscriptions, topic, queue and redrive queue (missing ones are fine)."""
    if clients is None:
        async with aws_clients() as opened:
            return await delete_aws_tenant(tenant, clients=opened)
    sns, sqs = clients.sns, clients.sqs
    topic_arn = str((await sns.create_topic(Name=resource_name(tenant)))["TopicArn"])
    subscriptions = await sns.list_subscriptions_by_topic(TopicArn=topic_arn)
    for sub in subscriptions.get("Subscriptions", []):
        if sub.get("SubscriptionArn", "").startswith("arn:"):
            await sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])
    await sns.delete_topic(TopicArn=topic_arn)
    for queue in (resource_name(tenant), dlq_name(tenant)):
        try:
            url = (await sqs.get_queue_url(QueueName=queue))["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist:
            continue
        await sqs.delete_queue(QueueUrl=url)


async def _ignore_conflict(call: Any) -> None:
    try:
        await call
    except aiohttp.ClientResponseError as exc:
        if exc.status != 409:  # already exists
            raise


async def create_gcp_tenant(
    tenant: str,
    *,
    project: str | None = None,
    ack_deadline: int | None = None,
    clients: tuple[PublisherClient, SubscriberClient] | None = None,
) -> GcpTenant:
    """Pub/Sub topic + subscription for ``tenant``; idempotent."""
    if clients is None:
        async with gcp_clients() as opened:
            return await create_gcp_tenant(tenant, project=project, ack_deadline=ack_deadline, clients=opened)
    publisher, subscriber = clients
    project = project or default_project()
    name = resource_name(tenant)
    topic = publisher.topic_path(project, name)
    subscription = subscriber.subscription_path(project, name)
    await _ignore_conflict(publisher.create_topic(topic))
    body = {"ackDeadlineSeconds": ack_deadline} if ack_deadline else None
    await _ignore_conflict(subscriber.create_subscription(subscription, topic, body))
    return GcpTenant(tenant, topic, subscription)


async def delete_gcp_tenant(
    tenant: str,
    *,
    project: str | None = None,
    clients: tuple[PublisherClient, SubscriberClient] | None = None,
) -> None:
    """Remove the tenant's subscription and topic (missing ones are fine)."""
    if clients is None:
        async with gcp_clients() as opened:
            return await delete_gcp_tenant(tenant, project=project, clients=opened)
    publisher, subscriber = clients
    project = project or default_project()
    name = resource_name(tenant)
    for call in (
        subscriber.delete_subscription(subscriber.subscription_path(project, name)),
        publisher.delete_topic(publisher.topic_path(project, name)),
    ):
        try:
            await call
        except aiohttp.ClientResponseError as exc:
            if exc.status != 404:
                raise


async def create_demo_tenants(
    tenants: Sequence[str], *, raw_delivery: bool = False, project: str | None = None
) -> tuple[list[AwsTenant], list[GcpTenant]]:
    """Every tenant on both clouds (SNS->SQS with redrive queue, Pub/Sub topic + subscription)."""
    slots = asyncio.Semaphore(CREATE_CONCURRENCY)
    async with aws_clients() as aws, gcp_clients() as gcp:

        async def aws_one(tenant: str) -> AwsTenant:
            async with slots:
                return await create_aws_tenant(tenant, raw_delivery=raw_delivery, clients=aws)

        async def gcp_one(tenant: str) -> GcpTenant:
            async with slots:
                return await create_gcp_tenant(tenant, project=project, clients=gcp)

        made_aws = await asyncio.gather(*(aws_one(t) for t in tenants))
        made_gcp = await asyncio.gather(*(gcp_one(t) for t in tenants))
    return list(made_aws), list(made_gcp)
