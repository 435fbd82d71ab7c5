"""`com.twilio.messaging.inbound-message.received`: Programmable Messaging inbound messages.

Schema Messaging.InboundMessageV1. An inbound message is `received` once; it shares the `message`
entity (and order key format) with the other message families.
"""


from typing import Annotated

from pydantic import ConfigDict

from ..envelope import CloudEvent, Identifier
from .base import Family, Payload, Places, event_types
from .messages import message_key

TYPE = "com.twilio.messaging.inbound-message.received"


class InboundMessageData(Payload):
    model_config = ConfigDict(coerce_numbers_to_str=True)

    messageSid: Annotated[Identifier, Places("the message: the entity id")]


class InboundMessages(Family[InboundMessageData]):
    name = "inbound-messages"
    entity = "message"
    id_source = "data.messageSid"
    types = event_types(TYPE, {"": "received"}, "Messaging.InboundMessageV1", [6])
    data_model = InboundMessageData
    precedence = "received once; against other message events, the message order key (attempt 0, rank 0)"
    time_fields = ("timestamp",)
    # Final from its first event (no REST check: quiet_after stays None); an outcome (outcomes.py).
    final = frozenset({"received"})

    def entity_id(self, event: CloudEvent, data: InboundMessageData) -> str:
        return data.messageSid

    def order_key(self, event: CloudEvent, data: InboundMessageData, status: str) -> str:
        return message_key(0, status, event)
