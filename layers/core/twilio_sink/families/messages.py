"""`com.twilio.comms-api.message.*`: message delivery (schemas CommsApi.Message*)."""

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..envelope import CloudEvent
from ..lifecycle import key, padded
from .base import Family

PREFIX = "com.twilio.comms-api.message."

# Within one attempt: queued < sent < delivered = undelivered = failed < read.
RANK = {"received": 0, "queued": 0, "sent": 1, "delivered": 2, "undelivered": 2, "failed": 2, "read": 3}


class Endpoint(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | None = None
    address: str | None = None
    channel: str | None = None


class Content(BaseModel):
    model_config = ConfigDict(extra="allow")
    text: str | None = None


class MessageData(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, coerce_numbers_to_str=True)

    message_id: str = Field(min_length=1)
    attempt: int = Field(0, ge=0, lt=10**10)
    account_sid: str | None = None
    operation_id: str | None = None
    downstream_id: str | None = None
    error_code: str | None = None
    session_id: str | None = None
    from_: Endpoint | None = Field(None, alias="from")
    to: Endpoint | None = None
    content: Content | None = None
    # Kept verbatim in `data` but never relied on: the seed documents `tags` both as an object and
    # as an array, so their shape must not dead-letter an otherwise valid status event.
    tags: dict[str, Any] | list[Any] | None = None
    channel_metadata: dict[str, Any] | None = None

    @field_validator("attempt", mode="before")
    @classmethod
    def _attempt_from_text(cls, value):
        # The schema sends `attempt` as a string; missing means 0.
        if value is None or value == "":
            return 0
        if isinstance(value, str) and not value.strip().isdigit():
            raise ValueError("attempt must be a whole number")
        return int(value)


class Messages(Family[MessageData]):
    entity = "message"
    statuses = {
        PREFIX + "queued": "queued",
        PREFIX + "sent": "sent",
        PREFIX + "delivered": "delivered",
        PREFIX + "undelivered": "undelivered",
        PREFIX + "failed": "failed",
        PREFIX + "read": "read",
        PREFIX + "inbound-received": "received",
    }
    data_model = MessageData
    # `delivered` is final too: only WhatsApp/RCS follow it with `read`, which Twilio sends as an event.
    final = frozenset({"delivered", "undelivered", "failed", "read", "received"})
    # A delivery receipt normally follows within seconds; after this long one was probably lost.
    stale_after = timedelta(minutes=15)

    def entity_id(self, data: MessageData) -> str:
        return data.message_id

    def indexed(self, data: MessageData) -> dict[str, str]:
        # Lists the messages of a bulk-send operation (index ByOperation).
        return {"operation_id": data.operation_id} if data.operation_id else {}

    def order_key(self, event: CloudEvent, data: MessageData, status: str) -> str:
        # A later attempt restarts the lifecycle, so the attempt outranks the status rank.
        return key(padded(data.attempt, 10), str(RANK[status]), event.time_utc, event.id)
