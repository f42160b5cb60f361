# mypy: ignore-errors
# Generated from catalog/proto by `python -m app.catalog.codegen`.
from models.canonical.carryover.identity.v1 import user_created_pb2 as _user_created_pb2
from models.canonical.carryover.identity.v1 import user_deactivated_pb2 as _user_deactivated_pb2
from models.canonical.carryover.identity.v1 import user_updated_pb2 as _user_updated_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UserEvent(_message.Message):
    __slots__ = ("user_created", "user_updated", "user_deactivated")
    USER_CREATED_FIELD_NUMBER: _ClassVar[int]
    USER_UPDATED_FIELD_NUMBER: _ClassVar[int]
    USER_DEACTIVATED_FIELD_NUMBER: _ClassVar[int]
    user_created: _user_created_pb2.UserCreated
    user_updated: _user_updated_pb2.UserUpdated
    user_deactivated: _user_deactivated_pb2.UserDeactivated
    def __init__(self, user_created: _Optional[_Union[_user_created_pb2.UserCreated, _Mapping]] = ..., user_updated: _Optional[_Union[_user_updated_pb2.UserUpdated, _Mapping]] = ..., user_deactivated: _Optional[_Union[_user_deactivated_pb2.UserDeactivated, _Mapping]] = ...) -> None: ...
