# mypy: ignore-errors
# Generated from catalog/proto by `python -m app.catalog.codegen`.
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Provenance(_message.Message):
    __slots__ = ("source", "source_id", "source_message_id", "legacy_type", "legacy_version")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    LEGACY_TYPE_FIELD_NUMBER: _ClassVar[int]
    LEGACY_VERSION_FIELD_NUMBER: _ClassVar[int]
    source: str
    source_id: str
    source_message_id: str
    legacy_type: str
    legacy_version: int
    def __init__(self, source: _Optional[str] = ..., source_id: _Optional[str] = ..., source_message_id: _Optional[str] = ..., legacy_type: _Optional[str] = ..., legacy_version: _Optional[int] = ...) -> None: ...
