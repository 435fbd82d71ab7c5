"""`com.twilio.comms-api.message.*`: message delivery (schemas CommsApi.Message*)."""

from datetime import timedelta
from typing import Annotated, Any

from pydantic import ConfigDict, Field, field_validator

from ..envelope import CloudEvent, Identifier
from ..order_keys import key, padded
from .base import Family, Payload, Places, event_types

PREFIX = "com.twilio.comms-api.message."

# Within one attempt: queued < sent < delivered = undelivered = failed < read.
RANK = {"received": 0, "queued": 0, "sent": 1, "delivered": 2, "undelivered": 2, "failed": 2, "read": 3}
MAX_ATTEMPT = 10**10
PRECEDENCE = ("the higher `attempt` wins (missing = 0); within an attempt queued < sent < delivered = "
              "undelivered = failed < read; equal rank: the later event time")


def message_key(attempt: int, status: str, event: CloudEvent) -> str:
    """The order key of every family that writes `message#<sid>`: one format, so they compare consistently.

    A later attempt restarts the lifecycle, so the attempt outranks the status rank.
    """
    return key(padded(attempt, 10), str(RANK[status]), event.time_utc, event.id)


class MessageData(Payload):
    # Twilio's schemas (seed 000) require no field at all: only what places the event is required here.
    model_config = ConfigDict(coerce_numbers_to_str=True)

    message_id: Annotated[Identifier, Places("the message: the entity id")]
    attempt: Annotated[int, Field(ge=0, lt=MAX_ATTEMPT), Places("a later attempt restarts the lifecycle (missing = 0)")] = 0
    operation_id: str | None = None  # the bulk-send operation, for the ByOperation index

    @field_validator("attempt", mode="before")
    @classmethod
    def _attempt_from_text(cls, value: Any) -> Any:
        # The schema sends `attempt` as a string; missing means 0. Anything else is left to pydantic,
        # which refuses it with a validation error (`int([1])` here would raise TypeError instead).
        if value is None or value == "":
            return 0
        if isinstance(value, str):
            if not value.strip().isdigit():
                raise ValueError("attempt must be a whole number")
            return int(value) if len(value.strip()) <= len(str(MAX_ATTEMPT)) else MAX_ATTEMPT
        return value


class Messages(Family[MessageData]):
    """Communications API messages."""

    name = "comms-messages"
    entity = "message"
    id_source = "data.message_id"
    types = {
        **event_types(PREFIX, {"queued": "queued"}, "CommsApi.MessageQueued", [3]),
        **event_types(PREFIX, {status: status for status in ("sent", "delivered", "undelivered", "failed", "read")},
                      {status: f"CommsApi.Message{status.capitalize()}" for status in RANK}, [4]),
        **event_types(PREFIX, {"inbound-received": "received"}, "CommsApi.MessageInbound", [2]),
    }
    data_model = MessageData
    precedence = PRECEDENCE
    # `delivered` is final too: only WhatsApp/RCS follow it with `read`, which Twilio sends as an event.
    final = frozenset({"delivered", "undelivered", "failed", "read", "received"})
    # A delivery receipt normally follows within seconds; after this long one was probably lost.
    quiet_after = timedelta(minutes=15)
    error_fields = ("error_code",)

    def entity_id(self, event: CloudEvent, data: MessageData) -> str:
        return data.message_id

    def indexed(self, data: MessageData) -> dict[str, str]:
        # Lists the messages of a bulk-send operation (index ByOperation).
        return {"operation_id": data.operation_id} if data.operation_id else {}

    def order_key(self, event: CloudEvent, data: MessageData, status: str) -> str:
        return message_key(data.attempt, status, event)
