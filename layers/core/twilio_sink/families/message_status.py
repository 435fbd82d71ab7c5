"""`com.twilio.messaging.message.*`: Programmable Messaging outbound status (schema Messaging.MessageStatus).

Writes the same `message#<sid>` entity as the Communications API family, with the same order key
format (`messages.message_key`): these events carry no attempt counter, so theirs is 0 (contract 2:
missing = 0), and within it the shared rank, then the event time, decide.

The status is the type's: `messageStatus` (UPPERCASE) normally says the same, and when they disagree
(a docs example shows a `delivered` type with `QUEUED`) the type wins, because the type is what the
subscription asked for and what subscribers filter on (`event_type`); `messageStatus` stays in `data`.
"""

from typing import Annotated

from pydantic import ConfigDict

from ..envelope import CloudEvent, Identifier
from .base import Family, Payload, Places, event_types
from .messages import PRECEDENCE, Messages, message_key

PREFIX = "com.twilio.messaging.message."
STATUSES = ("queued", "sent", "delivered", "undelivered", "failed", "read")


class MessageStatusData(Payload):
    model_config = ConfigDict(coerce_numbers_to_str=True)

    messageSid: Annotated[Identifier, Places("the message: the entity id")]


class MessageStatuses(Family[MessageStatusData]):
    name = "message-status"
    entity = "message"
    id_source = "data.messageSid"
    types = event_types(PREFIX, {status: status for status in STATUSES}, "Messaging.MessageStatus", range(3, 9))
    data_model = MessageStatusData
    precedence = PRECEDENCE + " (no attempt in these events: 0)"
    time_fields = ("timestamp", "dateUpdated")
    # The same messages as the Communications API's, asked about the same way (an inbound message has
    # its own family and is `received`, final, from its first event).
    final = Messages.final - {"received"}
    quiet_after = Messages.quiet_after
    error_fields = ("errorCode",)

    def entity_id(self, event: CloudEvent, data: MessageStatusData) -> str:
        return data.messageSid

    def order_key(self, event: CloudEvent, data: MessageStatusData, status: str) -> str:
        return message_key(0, status, event)
