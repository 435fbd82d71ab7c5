"""`com.twilio.voice.status-callback.call.*` (and the deprecated `…voice.webhook.status-callback.call.*`).

Schema Voice.WebhookEvent: the event records the status callback Twilio made for the call; the call's
SID and status are the callback's parameters (`request.parameters.CallSid`, `CallStatus`). When
`CallStatus` is missing or not one of Twilio's words, the type says the status (`answered` is
`in-progress`). Precedence follows the call's progress, then the event time: a call never goes back
from `completed` to `ringing`, whatever the arrival order.
"""

from datetime import timedelta
from typing import Annotated

from pydantic import model_validator

from ..envelope import CloudEvent, Identifier
from .base import Family, Payload, Places, Ranked, event_types

PREFIXES = ("com.twilio.voice.status-callback.call.", "com.twilio.voice.webhook.status-callback.call.")
BY_TYPE = {"initiated": "initiated", "ringing": "ringing", "answered": "in-progress", "completed": "completed"}
# Twilio's CallStatus words (contract 2), by call progress; the ends of a call rank together.
RANK = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3,
        "completed": 4, "busy": 4, "failed": 4, "no-answer": 4, "canceled": 4}
ENDS = frozenset(status for status, rank in RANK.items() if rank == RANK["completed"])


class CallbackParameters(Payload):
    CallSid: Annotated[Identifier | None, Places("the call (CA…): the entity id; else `data.sid`")] = None
    CallStatus: str | None = None  # decides the status when it is one of Twilio's words


class CallbackRequest(Payload):
    parameters: CallbackParameters | None = None


class CallData(Payload):
    one_of = ("request.parameters.CallSid", "sid")
    sid: Annotated[Identifier | None, Places("the call (CA…) when the callback's parameters lack CallSid")] = None
    request: CallbackRequest | None = None

    @model_validator(mode="after")
    def _has_a_call_sid(self) -> "CallData":
        if not self.call_sid:
            raise ValueError(f"{' or '.join(self.one_of)} is required")
        return self

    @property
    def parameters(self) -> CallbackParameters:
        return (self.request.parameters if self.request else None) or CallbackParameters()

    @property
    def call_sid(self) -> str:
        return self.parameters.CallSid or self.sid or ""


class Calls(Ranked[CallData]):
    name = "calls"
    entity = "call"
    id_source = "data.request.parameters.CallSid (else data.sid)"
    types = {
        **event_types(PREFIXES[0], BY_TYPE, "Voice.WebhookEvent", [1, 2]),
        **event_types(PREFIXES[1], BY_TYPE, "Voice.WebhookEvent", [1, 2]),
    }
    rank = RANK
    data_model = CallData
    precedence = ("call progress: queued < initiated < ringing < in-progress < completed = busy = failed = "
                  "no-answer = canceled; equal rank: the later event time")
    time_fields = ("timestamp", "requestDateCreated")
    final = ENDS
    # A call rings for seconds and lasts minutes (four hours at most): an hour without news means lost events.
    quiet_after = timedelta(hours=1)
    # The call's account is a parameter of the callback Twilio made.
    account_fields = ("request.parameters.AccountSid", *Family.account_fields)

    def status(self, event_type: str, data: CallData) -> str:
        reported = data.parameters.CallStatus
        return reported if reported in RANK else self.types[event_type].status

    def entity_id(self, event: CloudEvent, data: CallData) -> str:
        return data.call_sid
