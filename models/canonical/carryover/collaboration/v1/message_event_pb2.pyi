# mypy: ignore-errors
# Generated from catalog/proto by `python -m app.catalog.codegen`.
from models.canonical.carryover.collaboration.v1 import message_edited_pb2 as _message_edited_pb2
from models.canonical.carryover.collaboration.v1 import message_sent_pb2 as _message_sent_pb2
from models.canonical.carryover.collaboration.v1 import reaction_added_pb2 as _reaction_added_pb2
from models.canonical.carryover.collaboration.v1 import reaction_removed_pb2 as _reaction_removed_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MessageEvent(_message.Message):
    __slots__ = ("message_sent", "message_edited", "reaction_added", "reaction_removed")
    MESSAGE_SENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_EDITED_FIELD_NUMBER: _ClassVar[int]
    REACTION_ADDED_FIELD_NUMBER: _ClassVar[int]
    REACTION_REMOVED_FIELD_NUMBER: _ClassVar[int]
    message_sent: _message_sent_pb2.MessageSent
    message_edited: _message_edited_pb2.MessageEdited
    reaction_added: _reaction_added_pb2.ReactionAdded
    reaction_removed: _reaction_removed_pb2.ReactionRemoved
    def __init__(self, message_sent: _Optional[_Union[_message_sent_pb2.MessageSent, _Mapping]] = ..., message_edited: _Optional[_Union[_message_edited_pb2.MessageEdited, _Mapping]] = ..., reaction_added: _Optional[_Union[_reaction_added_pb2.ReactionAdded, _Mapping]] = ..., reaction_removed: _Optional[_Union[_reaction_removed_pb2.ReactionRemoved, _Mapping]] = ...) -> None: ...
