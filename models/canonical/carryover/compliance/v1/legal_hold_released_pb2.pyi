# mypy: ignore-errors
# Generated from catalog/proto by `python -m app.catalog.codegen`.
import datetime

from models.canonical.carryover.common.v1 import provenance_pb2 as _provenance_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LegalHoldReleased(_message.Message):
    __slots__ = ("tenant_id", "event_id", "event_time", "provenance", "hold_id", "actor_user_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_USER_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    event_id: str
    event_time: _timestamp_pb2.Timestamp
    provenance: _provenance_pb2.Provenance
    hold_id: str
    actor_user_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., event_id: _Optional[str] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., provenance: _Optional[_Union[_provenance_pb2.Provenance, _Mapping]] = ..., hold_id: _Optional[str] = ..., actor_user_id: _Optional[str] = ...) -> None: ...
