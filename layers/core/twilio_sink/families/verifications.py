"""`com.twilio.accountsecurity.verify.verification.*`: Verify verifications.

Schema AccountSecurity.VerifyEventStreamEvent; `verification_status` (UPPERCASE) says the same as
the type, which is what sets the status. A verification is `pending` until it ends (approved,
canceled, expired, max_attempts_reached); an end wins over `pending`, then the event time.
"""

from typing import Annotated

from ..envelope import CloudEvent, Identifier
from .base import Payload, Places, Ranked, event_types

PREFIX = "com.twilio.accountsecurity.verify.verification."
RANK = {"pending": 0, "approved": 1, "canceled": 1, "expired": 1, "max_attempts_reached": 1}


class VerificationData(Payload):
    verification_sid: Annotated[Identifier, Places("the verification (VE…): the entity id")]


class Verifications(Ranked[VerificationData]):
    name = "verifications"
    entity = "verification"
    id_source = "data.verification_sid"
    types = event_types(PREFIX, {status: status for status in RANK}, "AccountSecurity.VerifyEventStreamEvent",
                        [1, 2, 3])
    rank = RANK
    data_model = VerificationData
    precedence = "pending < approved = canceled = expired = max_attempts_reached; equal rank: the later event time"
    time_fields = ("updated_at", "verified_at", "created_at")

    def entity_id(self, event: CloudEvent, data: VerificationData) -> str:
        return data.verification_sid
