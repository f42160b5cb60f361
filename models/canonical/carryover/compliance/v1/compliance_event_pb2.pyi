# mypy: ignore-errors
# Generated from catalog/proto by `python -m app.catalog.codegen`.
from models.canonical.carryover.compliance.v1 import legal_hold_released_pb2 as _legal_hold_released_pb2
from models.canonical.carryover.compliance.v1 import legal_hold_set_pb2 as _legal_hold_set_pb2
from models.canonical.carryover.compliance.v1 import message_suppressed_pb2 as _message_suppressed_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ComplianceEvent(_message.Message):
    __slots__ = ("message_suppressed", "legal_hold_set", "legal_hold_released")
    MESSAGE_SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    LEGAL_HOLD_SET_FIELD_NUMBER: _ClassVar[int]
    LEGAL_HOLD_RELEASED_FIELD_NUMBER: _ClassVar[int]
    message_suppressed: _message_suppressed_pb2.MessageSuppressed
    legal_hold_set: _legal_hold_set_pb2.LegalHoldSet
    legal_hold_released: _legal_hold_released_pb2.LegalHoldReleased
    def __init__(self, message_suppressed: _Optional[_Union[_message_suppressed_pb2.MessageSuppressed, _Mapping]] = ..., legal_hold_set: _Optional[_Union[_legal_hold_set_pb2.LegalHoldSet, _Mapping]] = ..., legal_hold_released: _Optional[_Union[_legal_hold_released_pb2.LegalHoldReleased, _Mapping]] = ...) -> None: ...
