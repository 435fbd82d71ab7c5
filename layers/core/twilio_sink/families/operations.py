"""`com.twilio.comms-api.operation.*`: bulk-send operations (schemas CommsApi.Operation*)."""

from typing import Annotated

from ..envelope import CloudEvent, Identifier
from .base import Payload, Places, Ranked, event_types

PREFIX = "com.twilio.comms-api.operation."
RANK = {"scheduled": 0, "processing": 1, "completed": 2}


class OperationData(Payload):
    operation_id: Annotated[Identifier, Places("the bulk-send operation: the entity id")]


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
