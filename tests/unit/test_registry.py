"""Routing: one registry maps every seed type to its family, model and status."""

import pytest

from tests.support import factories as f
from twilio_sink.envelope import CloudEvent, Poison
from twilio_sink.registry import FAMILIES, known_types, route

SEED_TYPES = [
    "com.twilio.comms-api.message.queued", "com.twilio.comms-api.message.sent",
    "com.twilio.comms-api.message.delivered", "com.twilio.comms-api.message.undelivered",
    "com.twilio.comms-api.message.failed", "com.twilio.comms-api.message.read",
    "com.twilio.comms-api.message.inbound-received", "com.twilio.comms-api.operation.scheduled",
    "com.twilio.comms-api.operation.processing", "com.twilio.comms-api.operation.completed",
    *(f"com.twilio.messaging.compliance.brand-registration.brand-{k}" for k in ("unverified", "registered", "failure")),
    *(f"com.twilio.messaging.compliance.campaign-registration.campaign-{k}" for k in ("submitted", "approved", "failure")),
    *(f"com.twilio.messaging.compliance.number-{kind}.{k}"
      for kind in ("registration", "deregistration") for k in ("pending", "successful", "failed")),
    "com.twilio.eventstreams.test-event",
]


def test_registry_knows_exactly_the_seed_types():
    assert sorted(SEED_TYPES) == known_types()
    assert len(known_types()) == 23


def test_each_type_belongs_to_exactly_one_family():
    owners = [t for family in FAMILIES for t in family.statuses]
    assert len(owners) == len(set(owners))


def test_unknown_type_is_poison():
    with pytest.raises(Poison) as caught:
        route(CloudEvent.model_validate(f.cloudevent("com. twilio.messaging compliance.brand-registration.x", {})))
    assert caught.value.reason == "unknown_type"


@pytest.mark.parametrize(
    "event",
    [
        f.message("queued", message_id=""),
        f.cloudevent("com.twilio.comms-api.message.sent", {"attempt": "1"}),  # no message_id
        f.message("sent", attempt="two"),
        f.message("sent", attempt="-1"),
        f.cloudevent("com.twilio.comms-api.operation.completed", {}),
        f.cloudevent("com.twilio.messaging.compliance.brand-registration.brand-failure",
                     {"brandsid": "BN1", "updateddate": "yesterday"}),
        f.cloudevent("com.twilio.eventstreams.test-event", {"test_id": ""}),
    ],
)
def test_payload_invalid_for_its_type_is_poison(event):
    with pytest.raises(Poison) as caught:
        route(CloudEvent.model_validate(event))
    assert caught.value.reason == "invalid_payload"


def test_unknown_payload_fields_are_accepted_and_kept():
    event = f.message("queued", brand_new_field={"x": 1})
    change = route(CloudEvent.model_validate(event))
    assert change.event.data["brand_new_field"] == {"x": 1}
    assert (change.entity, change.entity_id, change.status) == ("message", "MM1", "queued")


def test_numeric_error_code_is_tolerated():
    change = route(CloudEvent.model_validate(f.message("failed", error_code=30007)))
    assert change.status == "failed"


def test_sink_test_event_is_keyed_by_test_id_not_by_its_shared_id():
    first = f.cloudevent("com.twilio.eventstreams.test-event", {"test_id": "t-1"}, event_id="AC1")
    second = f.cloudevent("com.twilio.eventstreams.test-event", {"test_id": "t-2"}, event_id="AC1")
    a, b = (route(CloudEvent.model_validate(e)) for e in (first, second))
    assert (a.pk, b.pk) == ("sink_test#t-1", "sink_test#t-2")


@pytest.mark.parametrize("tags", [{"campaign": "spring"}, [{"key": "campaign", "value": "spring"}], {"n": 1}])
def test_tags_in_either_documented_shape_are_accepted_and_kept(tags):
    # The seed calls `tags` both an object of strings and an "array of tag objects".
    change = route(CloudEvent.model_validate(f.message("sent", tags=tags, channel_metadata={"wa": {"x": 1}})))
    assert change.status == "sent" and change.event.data["tags"] == tags
