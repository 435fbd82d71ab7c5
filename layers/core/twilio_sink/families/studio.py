"""`com.twilio.studio.flow.execution.*`: Studio flow executions (schema Studio.FlowExecutionEvent).

An execution is `active` once started and `ended` at the end (its `ended_reason` is in `data`); an
execution never restarts, so `ended` wins over `active` whatever the arrival order. Step events
(`com.twilio.studio.flow.step.ended`) are not an execution's status: the catch-all keeps them.
"""

from typing import Annotated

from ..envelope import CloudEvent, Identifier
from .base import Payload, Places, Ranked, event_types

PREFIX = "com.twilio.studio.flow.execution."
RANK = {"active": 0, "ended": 1}


class FlowExecutionData(Payload):
    execution_sid: Annotated[Identifier, Places("the execution (FN…): the entity id")]


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
