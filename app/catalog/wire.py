"""Confluent Schema Registry protobuf wire format, written out by hand for speed (pure; no network).

A framed value is ``0x00`` (magic) + 4-byte big-endian schema id + message-index array + protobuf bytes.
The message-index array locates the message type inside its schema file: a zigzag varint count followed by
that many zigzag varints; the common case ``[0]`` (first top-level message) is the single byte ``0x00``.
Golden-byte tests pin this against confluent_kafka's ProtobufSerializer / ProtobufDeserializer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from google.protobuf.message import DecodeError, Message

from app.catalog.model import Catalog, default_catalog

if TYPE_CHECKING:
    from app.catalog.model import MessageDescriptor

MAGIC = 0
_HEADER_LEN = 5


class WireFormatError(ValueError):
    """Bytes that are not a valid Confluent protobuf frame, or a message of the wrong type for a topic."""


@dataclass(frozen=True)
class Framed:
    """The parts of a Confluent-framed protobuf value."""

    schema_id: int
    message_indexes: list[int]
    payload: bytes


def _zigzag_varint(value: int) -> bytes:
    """A non-negative int as a zigzag-encoded base-128 varint, as Confluent writes the index array."""
    n = value << 1 if value >= 0 else (value << 1) ^ -1
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def encode_message_indexes(message_indexes: Sequence[int]) -> bytes:
    """The message-index array bytes; ``[0]`` (and ``[]``) encode as the single byte 0x00."""
    if not message_indexes or list(message_indexes) == [0]:
        return b"\x00"
    for index in message_indexes:
        if index < 0:
            raise WireFormatError(f"message index must be >= 0, got {index}")
    return _zigzag_varint(len(message_indexes)) + b"".join(_zigzag_varint(i) for i in message_indexes)


def frame_prefix(schema_id: int, message_indexes: Sequence[int] = (0,)) -> bytes:
    """Everything that precedes the protobuf bytes in a frame (reusable for every record of one type)."""
    if not 0 <= schema_id <= 0xFFFFFFFF:
        raise WireFormatError(f"schema id must fit in 4 unsigned bytes, got {schema_id}")
    return bytes((MAGIC,)) + schema_id.to_bytes(4, "big") + encode_message_indexes(message_indexes)


def frame(schema_id: int, message_indexes: Sequence[int], payload: bytes) -> bytes:
    """A Confluent-framed value: magic byte, schema id, message indexes, then ``payload``."""
    return frame_prefix(schema_id, message_indexes) + payload


def _read_zigzag_varint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the zigzag varint at ``pos``; WireFormatError when truncated or too long."""
    shift = 0
    raw = 0
    while True:
        if pos >= len(data):
            raise WireFormatError("truncated message-index varint")
        byte = data[pos]
        pos += 1
        raw |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if shift > 63:
            raise WireFormatError("message-index varint longer than 10 bytes")
    return (raw >> 1) ^ -(raw & 1), pos


def unframe(data: bytes) -> Framed:
    """Splits a Confluent-framed value into schema id, message indexes and protobuf payload."""
    if len(data) < _HEADER_LEN + 1:
        raise WireFormatError(f"value too short for a Confluent protobuf frame ({len(data)} bytes, need 6+)")
    if data[0] != MAGIC:
        raise WireFormatError(f"unknown magic byte {data[0]:#04x} (expected 0x00): not Confluent-framed")
    schema_id = int.from_bytes(data[1:5], "big")
    count, pos = _read_zigzag_varint(data, _HEADER_LEN)
    if count == 0:
        return Framed(schema_id, [0], bytes(data[pos:]))
    if count < 0 or count > len(data) - pos:
        raise WireFormatError(f"bad message-index count {count}")
    indexes = []
    for _ in range(count):
        index, pos = _read_zigzag_varint(data, pos)
        if index < 0:
            raise WireFormatError(f"negative message index {index}")
        indexes.append(index)
    return Framed(schema_id, indexes, bytes(data[pos:]))


def message_indexes_for(descriptor: MessageDescriptor) -> list[int]:
    """Position of a message type in its file: top-level index, then nested indexes ([0] = first message)."""
    path: list[int] = []
    current = descriptor
    while current.containing_type is not None:
        parent = current.containing_type
        path.append([d.full_name for d in parent.nested_types].index(current.full_name))
        current = parent
    path.append(list(current.file.message_types_by_name).index(current.name))
    return path[::-1]


class EnvelopeCodec:
    """Encodes/decodes the protobuf envelopes of canonical topics with their registered schema ids."""

    def __init__(self, schema_ids: Mapping[str, int], catalog: Catalog | None = None) -> None:
        """``schema_ids`` maps canonical topic -> schema id of its ``<topic>-value`` subject."""
        self._catalog = catalog or default_catalog()
        self._classes: dict[str, type[Message]] = {}
        self._prefixes: dict[str, bytes] = {}
        self._indexes: dict[str, list[int]] = {}
        for topic, schema_id in schema_ids.items():
            cls = self._catalog.envelope_class(topic)
            self._classes[topic] = cls
            self._indexes[topic] = message_indexes_for(cls.DESCRIPTOR)
            self._prefixes[topic] = frame_prefix(schema_id, self._indexes[topic])

    @property
    def topics(self) -> list[str]:
        """Topics this codec knows a schema id for."""
        return list(self._classes)

    def _class_of(self, topic: str) -> type[Message]:
        """Envelope class of a topic this codec was built for."""
        try:
            return self._classes[topic]
        except KeyError:
            raise WireFormatError(f"no schema id configured for topic {topic!r}") from None

    def encode(self, topic: str, envelope: Message) -> bytes:
        """Framed bytes of ``envelope``, which must be the envelope type of ``topic``."""
        cls = self._class_of(topic)
        if not isinstance(envelope, cls):
            raise WireFormatError(
                f"topic {topic} carries {cls.DESCRIPTOR.full_name}, got {envelope.DESCRIPTOR.full_name}"
            )
        return self._prefixes[topic] + envelope.SerializeToString(deterministic=True)

    def decode(self, topic: str, data: bytes) -> Message:
        """The envelope of ``topic`` framed in ``data``; WireFormatError on bad framing or protobuf bytes.

        Any schema id is accepted (older, compatible versions of the subject decode with the current class).
        """
        cls = self._class_of(topic)
        framed = unframe(data)
        if framed.message_indexes != self._indexes[topic]:
            raise WireFormatError(f"message indexes {framed.message_indexes} are not {cls.DESCRIPTOR.name}")
        envelope = cls()
        try:
            envelope.ParseFromString(framed.payload)
        except DecodeError as exc:
            raise WireFormatError(f"invalid {cls.DESCRIPTOR.full_name} protobuf bytes: {exc}") from exc
        return envelope
