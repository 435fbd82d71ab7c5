"""`com.twilio.voice.insights.call-summary.*`: Voice Insights call summaries.

A summary is first `partial` (about 10 minutes after the call), may be `predicted-complete`, and is
`complete` within 30 minutes; the later processing stage wins, then the event time. The call's own
outcome (`call_state`: completed, busy, fail, noanswer…) is in `data`.
"""

from pydantic import BaseModel, ConfigDict

from ..envelope import CloudEvent, Identifier
from .base import Ranked, event_types

PREFIX = "com.twilio.voice.insights.call-summary."
RANK = {"partial": 0, "predicted-complete": 1, "complete": 2}


class CallSummaryData(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)

    call_sid: Identifier
    account_sid: str | None = None
    call_state: str | None = None
    processing_state: str | None = None
    start_time: str | None = None
    end_time: str | None = None


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
