"""`com.twilio.eventstreams.test-event`: the sink hand-shake.

Its `id` is the Account SID, the same for every test, so the entity is the `test_id`: each test is
recorded where an operator (or the set-up command) can find it, and is never de-duplicated away.
"""

from typing import Annotated

from ..envelope import CloudEvent, Identifier
from ..order_keys import key
from ..sids import ACCOUNT_SID
from .base import Family, Payload, Places, event_types

TYPE = "com.twilio.eventstreams.test-event"


class SinkTestData(Payload):
    test_id: Annotated[Identifier, Places("the sink test: the entity id")]


class SinkTests(Family[SinkTestData]):
    name = "sink-test"
    entity = "sink_test"
    id_source = "data.test_id"
    types = event_types(TYPE, {"": "received"}, "EventStreams.TestSink", [1])
    data_model = SinkTestData
    precedence = "the later event time"
    subscribable = False  # Twilio sends it on a sink test; no subscription can ask for it

    def entity_id(self, event: CloudEvent, data: SinkTestData) -> str:
        return data.test_id

    def accounts_named(self, event: CloudEvent) -> list[str]:
        # The test event's `id` is the Account SID (its `source` is just `Sink`).
        return super().accounts_named(event) + ([event.id] if ACCOUNT_SID.fullmatch(event.id) else [])

    def order_key(self, event: CloudEvent, data: SinkTestData, status: str) -> str:
        return key(event.time_utc, event.id)

