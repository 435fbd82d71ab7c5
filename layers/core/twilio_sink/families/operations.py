"""`com.twilio.comms-api.operation.*`: bulk-send operations (schemas CommsApi.Operation*)."""

from pydantic import BaseModel, ConfigDict

from ..envelope import CloudEvent, Identifier
from .base import Ranked, event_types

PREFIX = "com.twilio.comms-api.operation."
RANK = {"scheduled": 0, "processing": 1, "completed": 2}


class OperationData(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)
    operation_id: Identifier


class Operations(Ranked[OperationData]):
    name = "operations"
    entity = "operation"
    id_source = "data.operation_id"
    types = event_types(PREFIX, {status: status for status in RANK},
                        {status: f"CommsApi.Operation{status.capitalize()}" for status in RANK}, [2])
    rank = RANK
    data_model = OperationData
    precedence = "scheduled < processing < completed; equal rank: the later event time"

    def entity_id(self, event: CloudEvent, data: OperationData) -> str:
        return data.operation_id
