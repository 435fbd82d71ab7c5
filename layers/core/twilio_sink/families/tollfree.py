"""`com.twilio.messaging.compliance.toll-free-verification.*`: toll-free number verification.

Like the A2P registrations, a verification moves back and forth (rejected, edited, approved): the
newest event wins (its time, then `processeddate`).
"""

from datetime import timedelta
from typing import Annotated

from pydantic import Field

from ..envelope import CloudEvent, Identifier
from ..order_keys import key, padded
from .a2p import PREFIX
from .base import Family, Payload, Places, event_types

TYPES = PREFIX + "toll-free-verification."
STATUSES = {"requested": "requested", "pending-review": "pending_review", "edit": "edited",
            "request-approved": "approved", "rejected": "rejected", "failure": "failed",
            "expired": "expired", "deleted": "deleted"}


class TollFreeData(Payload):
    tollfreeverificationsid: Annotated[Identifier, Places("the verification (HH…): the entity id")]
    # Epoch milliseconds; only breaks ties between events of the same `time`: unreadable counts as absent.
    processeddate: int | None = Field(None, ge=0, lt=10**15)


class TollFreeVerifications(Family[TollFreeData]):
    name = "toll-free"
    entity = "tollfree_verification"
    id_source = "data.tollfreeverificationsid"
    # Twilio names one schema per type (`TollFree.VerificationEdit`); only the namespace is checked.
    types = event_types(TYPES, STATUSES, "TollFree.", [1, 2])
    data_model = TollFreeData
    precedence = "the later event time, then the payload's `processeddate`"
    time_fields = ("processeddate",)
    # A rejected verification can still be edited and resubmitted (Twilio's `edit_allowed`): not final.
    final = frozenset({"approved", "expired", "deleted"})
    # Reviews take days; a verification unchanged this long is worth asking Twilio about.
    quiet_after = timedelta(hours=6)
    setbacks = frozenset({"rejected", "failed"})

    def entity_id(self, event: CloudEvent, data: TollFreeData) -> str:
        return data.tollfreeverificationsid

    def order_key(self, event: CloudEvent, data: TollFreeData, status: str) -> str:
        return key(event.time_utc, padded(data.processeddate or 0), event.id)
