# mypy: ignore-errors
# Generated from catalog/proto by `python -m app.catalog.codegen`.
from models.canonical.carryover.collaboration.v1 import conversation_created_pb2 as _conversation_created_pb2
from models.canonical.carryover.collaboration.v1 import conversation_deactivated_pb2 as _conversation_deactivated_pb2
from models.canonical.carryover.collaboration.v1 import conversation_reactivated_pb2 as _conversation_reactivated_pb2
from models.canonical.carryover.collaboration.v1 import conversation_updated_pb2 as _conversation_updated_pb2
from models.canonical.carryover.collaboration.v1 import member_joined_pb2 as _member_joined_pb2
from models.canonical.carryover.collaboration.v1 import member_left_pb2 as _member_left_pb2
from models.canonical.carryover.collaboration.v1 import member_role_changed_pb2 as _member_role_changed_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConversationEvent(_message.Message):
    __slots__ = ("conversation_created", "conversation_updated", "conversation_deactivated", "conversation_reactivated", "member_joined", "member_left", "member_role_changed")
    CONVERSATION_CREATED_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_UPDATED_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_DEACTIVATED_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_REACTIVATED_FIELD_NUMBER: _ClassVar[int]
    MEMBER_JOINED_FIELD_NUMBER: _ClassVar[int]
    MEMBER_LEFT_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ROLE_CHANGED_FIELD_NUMBER: _ClassVar[int]
    conversation_created: _conversation_created_pb2.ConversationCreated
    conversation_updated: _conversation_updated_pb2.ConversationUpdated
    conversation_deactivated: _conversation_deactivated_pb2.ConversationDeactivated
    conversation_reactivated: _conversation_reactivated_pb2.ConversationReactivated
    member_joined: _member_joined_pb2.MemberJoined
    member_left: _member_left_pb2.MemberLeft
    member_role_changed: _member_role_changed_pb2.MemberRoleChanged
    def __init__(self, conversation_created: _Optional[_Union[_conversation_created_pb2.ConversationCreated, _Mapping]] = ..., conversation_updated: _Optional[_Union[_conversation_updated_pb2.ConversationUpdated, _Mapping]] = ..., conversation_deactivated: _Optional[_Union[_conversation_deactivated_pb2.ConversationDeactivated, _Mapping]] = ..., conversation_reactivated: _Optional[_Union[_conversation_reactivated_pb2.ConversationReactivated, _Mapping]] = ..., member_joined: _Optional[_Union[_member_joined_pb2.MemberJoined, _Mapping]] = ..., member_left: _Optional[_Union[_member_left_pb2.MemberLeft, _Mapping]] = ..., member_role_changed: _Optional[_Union[_member_role_changed_pb2.MemberRoleChanged, _Mapping]] = ...) -> None: ...
