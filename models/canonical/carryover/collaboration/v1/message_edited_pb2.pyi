# mypy: ignore-errors
# Generated from catalog/proto by `python -m app.catalog.codegen`.
import datetime

from models.canonical.carryover.common.v1 import encrypted_text_pb2 as _encrypted_text_pb2
from models.canonical.carryover.common.v1 import link_pb2 as _link_pb2
from models.canonical.carryover.common.v1 import mention_pb2 as _mention_pb2
from models.canonical.carryover.common.v1 import provenance_pb2 as _provenance_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MessageEdited(_message.Message):
    __slots__ = ("tenant_id", "event_id", "event_time", "provenance", "conversation_id", "message_id", "editor_user_id", "text", "mentions", "hashtags", "links")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    EDITOR_USER_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    MENTIONS_FIELD_NUMBER: _ClassVar[int]
    HASHTAGS_FIELD_NUMBER: _ClassVar[int]
    LINKS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    event_id: str
    event_time: _timestamp_pb2.Timestamp
    provenance: _provenance_pb2.Provenance
    conversation_id: str
    message_id: str
    editor_user_id: str
    text: _encrypted_text_pb2.EncryptedText
    mentions: _containers.RepeatedCompositeFieldContainer[_mention_pb2.Mention]
    hashtags: _containers.RepeatedScalarFieldContainer[str]
    links: _containers.RepeatedCompositeFieldContainer[_link_pb2.Link]
    def __init__(self, tenant_id: _Optional[str] = ..., event_id: _Optional[str] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., provenance: _Optional[_Union[_provenance_pb2.Provenance, _Mapping]] = ..., conversation_id: _Optional[str] = ..., message_id: _Optional[str] = ..., editor_user_id: _Optional[str] = ..., text: _Optional[_Union[_encrypted_text_pb2.EncryptedText, _Mapping]] = ..., mentions: _Optional[_Iterable[_Union[_mention_pb2.Mention, _Mapping]]] = ..., hashtags: _Optional[_Iterable[str]] = ..., links: _Optional[_Iterable[_Union[_link_pb2.Link, _Mapping]]] = ...) -> None: ...
