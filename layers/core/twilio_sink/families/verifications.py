"""`com.twilio.accountsecurity.verify.verification.*`: Verify verifications.

Schema AccountSecurity.VerifyEventStreamEvent; `verification_status` (UPPERCASE) says the same as
the type, which is what sets the status. A verification is `pending` until it ends (approved,
canceled, expired, max_attempts_reached); an end wins over `pending`, then the event time.
"""

from pydantic import BaseModel, ConfigDict

from ..envelope import CloudEvent, Identifier
from .base import Ranked, event_types

PREFIX = "com.twilio.accountsecurity.verify.verification."
RANK = {"pending": 0, "approved": 1, "canceled": 1, "expired": 1, "max_attempts_reached": 1}


class VerificationData(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)

    verification_sid: Identifier
    account_sid: str | None = None
    service_sid: str | None = None
    verification_status: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


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
