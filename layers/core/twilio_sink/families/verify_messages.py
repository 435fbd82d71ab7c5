"""`com.twilio.accountsecurity.verify.message.*`: delivery of each message a Verify service sends.

Schema AccountSecurity.MessageStatusEvent. One message per send attempt, so the entity is the
attempt (`attempt_sid`, VL…); its verification is `verification_sid` in `data`. Ranked like a
message: sent < delivered = undelivered = failed < read, then the event time.
"""

from typing import Annotated

from ..envelope import CloudEvent, Identifier
from .base import Payload, Places, Ranked, event_types

PREFIX = "com.twilio.accountsecurity.verify.message."
RANK = {"sent": 0, "delivered": 1, "undelivered": 1, "failed": 1, "read": 2}


class VerifyMessageData(Payload):
    attempt_sid: Annotated[Identifier, Places("the send attempt (VL…): the entity id")]


class VerifyMessages(Ranked[VerifyMessageData]):
    name = "verify-messages"
    entity = "verify_message"
    id_source = "data.attempt_sid"
    types = event_types(PREFIX, {status: status for status in RANK}, "AccountSecurity.MessageStatusEvent", [1, 2])
    rank = RANK
    data_model = VerifyMessageData
    precedence = "sent < delivered = undelivered = failed < read; equal rank: the later event time"
    time_fields = ("created_at",)

    def entity_id(self, event: CloudEvent, data: VerifyMessageData) -> str:
        return data.attempt_sid
