"""`com.twilio.voice.insights.call-summary.*`: Voice Insights call summaries.

A summary is first `partial` (about 10 minutes after the call), may be `predicted-complete`, and is
`complete` within 30 minutes; the later processing stage wins, then the event time. The call's own
outcome (`call_state`: completed, busy, fail, noanswer…) is in `data`.
"""

from typing import Annotated

from ..envelope import CloudEvent, Identifier
from .base import Payload, Places, Ranked, event_types

PREFIX = "com.twilio.voice.insights.call-summary."
RANK = {"partial": 0, "predicted-complete": 1, "complete": 2}


class CallSummaryData(Payload):
    call_sid: Annotated[Identifier, Places("the call (CA…): the entity id")]


class CallSummaries(Ranked[CallSummaryData]):
    name = "call-summaries"
    entity = "call_summary"
    id_source = "data.call_sid"
    # The exact schema name per stage is not shown in Twilio's docs: the namespace is checked.
    types = event_types(PREFIX, {stage: stage for stage in RANK}, "VoiceInsights.", [1])
    rank = RANK
    data_model = CallSummaryData
    precedence = "partial < predicted-complete < complete; equal rank: the later event time"
    time_fields = ("end_time", "start_time")

    def entity_id(self, event: CloudEvent, data: CallSummaryData) -> str:
        return data.call_sid
