"""`com.twilio.eventstreams.test-event`: the sink hand-shake.

Its `id` is the Account SID, the same for every test, so the entity is the `test_id`: each test is
recorded where an operator (or the set-up command) can find it, and is never de-duplicated away.
"""

from pydantic import BaseModel, ConfigDict, Field

from ..envelope import CloudEvent
from ..lifecycle import key
from .base import Family


class SinkTestData(BaseModel):
    model_config = ConfigDict(extra="allow")
    test_id: str = Field(min_length=1)


class SinkTests(Family[SinkTestData]):
    entity = "sink_test"
    statuses = {"com.twilio.eventstreams.test-event": "received"}
    data_model = SinkTestData

    def entity_id(self, data: SinkTestData) -> str:
        return data.test_id

    def order_key(self, event: CloudEvent, data: SinkTestData, status: str) -> str:
        return key(event.time_utc, event.id)
