"""`com.twilio.comms-api.operation.*`: bulk-send operations (schemas CommsApi.Operation*)."""

from pydantic import BaseModel, ConfigDict, Field

from ..envelope import CloudEvent
from ..lifecycle import key
from .base import Family

PREFIX = "com.twilio.comms-api.operation."
RANK = {"scheduled": 0, "processing": 1, "completed": 2}


class OperationData(BaseModel):
    model_config = ConfigDict(extra="allow")
    operation_id: str = Field(min_length=1)


class Operations(Family[OperationData]):
    entity = "operation"
    statuses = {PREFIX + status: status for status in RANK}
    data_model = OperationData

    def entity_id(self, data: OperationData) -> str:
        return data.operation_id

    def order_key(self, event: CloudEvent, data: OperationData, status: str) -> str:
        return key(str(RANK[status]), event.time_utc, event.id)
