"""Archive benchmark: the close of one window with many conversations, in process (no Kafka, no S3).

What a close does per conversation after the re-read: build the conversation's window from its state and
events (``conversation_window``), render each format of the policy (text decrypted with the tenant key),
write each file once to the local directory sink (temporary file + ``link``), then the partition's part;
and what ``carryover archive verify`` does per file on the bucket side (read, SHA-256, compare). Not
included: re-reading the partition from Kafka (aiokafka reads ~210-270k records/s here, DESIGN.md), S3
round trips (moto or AWS: one PUT per file; that dominates with a real bucket), the state table read.

Each conversation: created, 3 members joining, ``--messages`` messages (one edited, one suppressed), all in
the window. Run: ``python -m bench.archive_bench`` (10 000 conversations, a few minutes), ``--conversations``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from app.archive import render
from app.archive.manifest import ManifestFile, object_key, sha256_hex
from app.archive.parts import ManifestPart, part_key
from app.archive.policy import ArchiveFormat, Window
from app.archive.sinks import DirectorySink
from app.archive.window import conversation_window
from app.crypto import aead
from app.state.conversation import ConversationState
from app.state.directory import DictDirectory
from app.state.facts import fact_from_event
from models.canonical.carryover.collaboration.v1.conversation_created_pb2 import ConversationCreated
from models.canonical.carryover.collaboration.v1.member_joined_pb2 import MemberJoined
from models.canonical.carryover.collaboration.v1.message_edited_pb2 import MessageEdited
from models.canonical.carryover.collaboration.v1.message_sent_pb2 import MessageSent
from models.canonical.carryover.common.v1.encrypted_text_pb2 import EncryptedText
from models.canonical.carryover.common.v1.member_role_pb2 import MEMBER_ROLE_MEMBER
from models.canonical.carryover.compliance.v1.message_suppressed_pb2 import MessageSuppressed
from models.canonical.carryover.identity.v1.user_created_pb2 import UserCreated
from models.canonical.carryover.identity.v1.user_updated_pb2 import UserUpdated

TENANT, KEY_ID, KEY = "bench-bank", "bench-k1", bytes(range(32))
T0 = 1_767_225_600_000
WINDOW = Window(T0, T0 + 3_600_000)
FORMATS = (ArchiveFormat.ACTIANCE_XML, ArchiveFormat.EML, ArchiveFormat.JSONL)


class Keys:
    """The bench tenant's one key."""

    def decryption_key(self, tenant_id: str, key_id: str) -> bytes:
        return KEY


def _common(event_id: str, t: int) -> dict[str, Any]:
    when = Timestamp()
    when.FromMilliseconds(t)
    return {"tenant_id": TENANT, "event_id": event_id, "event_time": when}


def _text(text: str, context: str) -> EncryptedText:
    blob = aead.seal_deterministic(KEY, text.encode(), tenant_id=TENANT, key_id=KEY_ID, context=context)
    return EncryptedText(key_id=KEY_ID, ciphertext=blob)


def conversation(n: int, messages: int) -> tuple[ConversationState, list[Any]]:
    """One conversation's state and events."""
    room = f"room-{n:06d}"
    users = [f"u{(n * 3 + i) % 500}" for i in range(3)]
    t = T0 + (n % 1000) * 1000
    events: list[Any] = [
        ConversationCreated(**_common(f"{room}-c", t), conversation_id=room, name=f"Desk {n}")
    ]
    for i, user in enumerate(users):
        events.append(
            MemberJoined(
                **_common(f"{room}-j{i}", t + 1 + i),
                conversation_id=room,
                user_id=user,
                role=MEMBER_ROLE_MEMBER,
                actor_user_id=user,
            )
        )
    for i in range(messages):
        e = f"{room}-m{i}"
        events.append(
            MessageSent(
                **_common(e, t + 100 + i * 10),
                conversation_id=room,
                message_id=f"m-{e}",
                sender_user_id=users[i % 3],
                text=_text(f"message {i} of desk {n}: EUR/USD 1.08{i % 10}", e),
            )
        )
    first = f"m-{room}-m0"
    events.append(
        MessageEdited(
            **_common(f"{room}-e", t + 5000),
            conversation_id=room,
            message_id=first,
            editor_user_id=users[0],
            text=_text("edited", f"{room}-e"),
        )
    )
    events.append(
        MessageSuppressed(
            **_common(f"{room}-s", t + 6000),
            conversation_id=room,
            message_id=first,
            actor_user_id="u9",
            reason="x",
        )
    )
    state = ConversationState(TENANT, room)
    for event in events:
        fact = fact_from_event(event)
        assert fact is not None
        state.apply(fact)
    return state, events


def directory() -> DictDirectory:
    """500 users in the unit "trading"."""
    book = DictDirectory()
    for i in range(500):
        user = f"u{i}"
        created = UserCreated(
            **_common(f"uc-{user}", 0), user_id=user, display_name=f"User {i}", email=f"{user}@b.x"
        )
        book.apply(fact_from_event(created))  # type: ignore[arg-type]
        update = UserUpdated(**_common(f"uu-{user}", 0), user_id=user, business_unit="trading")
        book.apply(fact_from_event(update))  # type: ignore[arg-type]
    return book


async def close_window(
    conversations: list[tuple[ConversationState, list[Any]]], root: Path
) -> tuple[list[ManifestFile], int]:
    """Render and write every conversation of the window, then the part: (files, bytes written)."""
    sink, people, keys = DirectorySink(root), directory(), Keys()
    files: list[ManifestFile] = []
    counts: dict[str, dict[str, int]] = {}
    size = 0
    for state, events in conversations:
        cw = conversation_window(state, people, "trading", WINDOW, events)
        assert cw is not None
        counts[cw.conversation_id] = cw.event_counts()
        for fmt in FORMATS:
            data = render(fmt, cw, keys).data
            key = object_key(TENANT, "trading", fmt, WINDOW, cw.conversation_id)
            await sink.put_once(key, data, tenant=TENANT, retention_days=1)
            files.append(ManifestFile(key, fmt.value, cw.conversation_id, sha256_hex(data), len(data)))
            size += len(data)
    part = ManifestPart(TENANT, "trading", WINDOW, "events", 0, 1, -1, 0, 0, tuple(files), counts)
    await sink.put_once(
        part_key(TENANT, "trading", WINDOW, 0), part.to_json(), tenant=TENANT, retention_days=1
    )
    return files, size


async def verify_files(files: list[ManifestFile], root: Path) -> None:
    """Read every file back and compare its SHA-256 (the bucket side of `archive verify`)."""
    sink = DirectorySink(root)
    for listed in files:
        data = await sink.get(listed.key)
        assert data is not None and hashlib.sha256(data).hexdigest() == listed.sha256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=6)
    args = parser.parse_args()
    built = time.perf_counter()
    conversations = [conversation(n, args.messages) for n in range(args.conversations)]
    build_seconds = time.perf_counter() - built
    with tempfile.TemporaryDirectory(prefix="archive-bench-") as tmp:
        started, cpu = time.perf_counter(), time.process_time()
        files, size = asyncio.run(close_window(conversations, Path(tmp)))
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
        checked = time.perf_counter()
        asyncio.run(verify_files(files, Path(tmp)))
        verify_seconds = time.perf_counter() - checked
    events = sum(len(e) for _, e in conversations)
    messages = args.conversations * args.messages
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        "| conversations | events | files | MiB | close s | events/s | CPU s | verify s "
        "| verify s per 1M msgs | RSS MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {args.conversations} | {events} | {len(files)} | {size / 2**20:.1f} | {seconds:.1f} | "
        f"{events / seconds:.0f} | {cpu_seconds:.1f} | {verify_seconds:.1f} | "
        f"{verify_seconds * 1_000_000 / messages:.0f} | {rss:.0f} |"
    )
    print(f"(building the inputs took {build_seconds:.1f}s, not counted)")


if __name__ == "__main__":
    main()
