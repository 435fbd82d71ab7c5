"""What the A2P 10DLC registration families share: payload conventions and "latest wins"."""

from pydantic import Field

from ..envelope import CloudEvent
from ..order_keys import key, padded
from .base import Family, Payload

PREFIX = "com.twilio.messaging.compliance."
EPOCH_MS = Field(None, ge=0, lt=10**15)
# Types beyond the seeds whose exact schema name Twilio's docs do not show: only the namespace is checked.
A2P_NAMESPACE = "A2P."


class A2PData(Payload):
    """A2P payloads: lowercase keys, epoch-millisecond integers.

    `updateddate` and `timestamp` only break ties between events of the same `time`: unreadable, they
    count as absent (0) rather than refuse the event.
    """

    updateddate: int | None = EPOCH_MS
    timestamp: int | None = EPOCH_MS


class LatestWins[Data: A2PData](Family[Data]):
    """Registrations move back and forth (failed, resubmitted, registered): the newest event wins."""

    precedence = "the later event time, then the payload's `updateddate`, then `timestamp`"
    time_fields = ("timestamp", "updateddate", "createddate")

    def order_key(self, event: CloudEvent, data: Data, status: str) -> str:
        return key(event.time_utc, padded(data.updateddate or 0), padded(data.timestamp or 0), event.id)
