"""Builds the long-lived objects agents and commands share, from settings: tenant keys, schema ids, codec.

Adapters (KMS, schema registry) are touched here, at start-up, so the normalizer itself stays pure.
"""

from __future__ import annotations

import asyncio
import logging

from app.catalog.model import default_catalog
from app.catalog.registry import registry_client, schema_ids
from app.catalog.wire import EnvelopeCodec
from app.crypto.keyring import Keyring
from app.crypto.providers import keyring as keyring_for
from app.normalize.normalizer import Normalizer
from app.settings import Settings
from app.topics import DEAD_LETTERS

log = logging.getLogger(__name__)


async def build_keyring(settings: Settings) -> Keyring:
    """The tenant keyring, loaded from the configured provider (local key file or KMS envelope)."""
    keyring = keyring_for(settings.key_provider, settings.key_file, settings.key_cache_ttl)
    await keyring.load()
    log.info("tenant keys loaded (%s provider, %s)", settings.key_provider, settings.key_file)
    return keyring


async def build_codec(settings: Settings) -> EnvelopeCodec:
    """The Confluent codec with the registry's schema ids for every canonical topic."""
    catalog = default_catalog()
    client = registry_client(settings.schema_registry_url)
    auto = settings.schema_auto_register or settings.schema_registry_url.startswith("mock://")
    ids = await asyncio.to_thread(schema_ids, client, catalog, auto_register=auto)
    log.info("schema ids from %s: %s", settings.schema_registry_url.split("@")[-1], ids)
    return EnvelopeCodec(ids, catalog)


async def build_normalizer(settings: Settings) -> Normalizer:
    """A ready :class:`Normalizer` for this process."""
    return await NormalizeRuntime(settings).ready()


class NormalizeRuntime:
    """The normalizer of one worker and the keyring behind it, built on first use (at the agent's start)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keyring: Keyring | None = None
        self.normalizer: Normalizer | None = None

    async def ready(self) -> Normalizer:
        """The normalizer, built (keys loaded, schema ids looked up) the first time."""
        if self.normalizer is None:
            keyring, codec = await asyncio.gather(build_keyring(self.settings), build_codec(self.settings))
            self.keyring = keyring
            self.normalizer = Normalizer(
                codec, keyring, DEAD_LETTERS, max_record_bytes=self.settings.max_canonical_bytes
            )
        return self.normalizer
