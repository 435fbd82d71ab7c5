"""`com.twilio.studio.flow.execution.*`: Studio flow executions (schema Studio.FlowExecutionEvent).

An execution is `active` once started and `ended` at the end (its `ended_reason` is in `data`); an
execution never restarts, so `ended` wins over `active` whatever the arrival order. Step events
(`com.twilio.studio.flow.step.ended`) are not an execution's status: the catch-all keeps them.
"""

from pydantic import BaseModel, ConfigDict

from ..envelope import CloudEvent, Identifier
from .base import Ranked, event_types

PREFIX = "com.twilio.studio.flow.execution."
RANK = {"active": 0, "ended": 1}


class FlowExecutionData(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)

    execution_sid: Identifier
    account_sid: str | None = None
    flow_sid: str | None = None
    status: str | None = None
    ended_reason: str | None = None
    date_created: str | None = None
    date_updated: str | None = None


class FlowExecutions(Ranked[FlowExecutionData]):
    name = "studio"
    entity = "flow_execution"
    id_source = "data.execution_sid"
    types = event_types(PREFIX, {"started": "active", "ended": "ended"}, "Studio.FlowExecutionEvent", [1, 2])
    rank = RANK
    data_model = FlowExecutionData
    precedence = "active < ended; equal rank: the later event time"
    time_fields = ("date_updated", "date_created")

    def entity_id(self, event: CloudEvent, data: FlowExecutionData) -> str:
        return data.execution_sid
