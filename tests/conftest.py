"""Session fixtures: the real local stack (Tansu, moto, Pub/Sub emulator), started once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.stack import RunningStack, running_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """The local stack, up for the whole session; its environment is exported to os.environ."""
    yield from running_stack(tmp_path_factory.mktemp("stack"))


@pytest.fixture(scope="session")
def kafka_bootstrap(stack: RunningStack) -> str:
    """host:port of the session's broker."""
    return stack.bootstrap


@pytest.fixture(scope="session")
def moto_endpoint(stack: RunningStack) -> str:
    """URL of the session's moto server."""
    return stack.aws_endpoint


@pytest.fixture(scope="session")
def pubsub_emulator_host(stack: RunningStack) -> str:
    """host:port of the session's Pub/Sub emulator."""
    return stack.pubsub_host
