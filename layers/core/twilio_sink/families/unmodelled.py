"""The catch-all: a valid CloudEvent whose type no family models is kept as entity `event` (contract 2).

Its id is the CloudEvent `id`, so a repeated delivery is a duplicate: stored once, published once,
status `received`. Subscribers tell such events apart by `event_type`.
"""

from ..envelope import CloudEvent
from .base import Family, Payload

# Where Twilio's payloads commonly keep their timestamp, for an event without `time`.
COMMON_TIME_FIELDS = ("timestamp", "date_updated", "dateUpdated", "updateddate", "date_created", "dateCreated",
                      "createddate", "DateUpdated", "DateCreated")


class AnyData(Payload):
    """Whatever the payload holds: nothing places such an event but its CloudEvent `id`."""


class Unmodelled(Family[AnyData]):
    name = "unmodelled"
    entity = "event"
    id_source = "the CloudEvent `id`"
    types: dict = {}  # every type no other family declares
    data_model = AnyData
    precedence = "one state per event id: a repeat is a duplicate"
    time_fields = COMMON_TIME_FIELDS

    @property
    def status_words(self) -> tuple[str, ...]:
        return ("received",)

    def status(self, event_type: str, data: AnyData) -> str:
        return "received"

    def entity_id(self, event: CloudEvent, data: AnyData) -> str:
        return event.id

    def order_key(self, event: CloudEvent, data: AnyData, status: str) -> str:
        return event.id
