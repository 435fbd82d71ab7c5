"""Routing: one registry maps every type to its family, model and status; anything else is kept."""

import pytest

from tests.support import factories as f
from twilio_sink import registry
from twilio_sink.envelope import CloudEvent
from twilio_sink.poison import Poison
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


def test_registry_knows_the_seed_types_and_the_catalog_beyond():
    assert set(SEED_TYPES) <= set(known_types())
    assert {"com.twilio.messaging.message.delivered", "com.twilio.messaging.inbound-message.received",
            "com.twilio.voice.status-callback.call.completed", "com.twilio.voice.webhook.status-callback.call.ringing",
            "com.twilio.voice.insights.call-summary.complete", "com.twilio.studio.flow.execution.ended",
            "com.twilio.accountsecurity.verify.verification.approved",
            "com.twilio.accountsecurity.verify.message.delivered",
            "com.twilio.messaging.compliance.toll-free-verification.request-approved",
            "com.twilio.messaging.compliance.brand-registration.brand-vetted-verified",
            "com.twilio.messaging.compliance.campaign-registration.campaign-deleted"} <= set(known_types())


def test_each_type_belongs_to_exactly_one_family():
    owners = [t for family in FAMILIES for t in family.types]
    assert len(owners) == len(set(owners))


@pytest.mark.parametrize("event_type", ["com. twilio.messaging compliance.brand-registration.x",
                                        "com.twilio.conversations.message.added", "x"])
def test_a_type_no_family_models_is_kept_as_an_event_keyed_by_its_id(event_type):
    event = f.cloudevent(event_type, {"anything": [1, {"a": None}]}, event_id="EZ-unmodelled")
    change = route(CloudEvent.model_validate(event))
    assert (change.entity, change.entity_id, change.status) == ("event", "EZ-unmodelled", "received")
    # a repeat of the same id is the same order key: a duplicate, never a second change
    assert route(CloudEvent.model_validate(event | {"time": f.at(60)})).order_key == change.order_key


def test_an_error_no_family_foresaw_is_invalid_payload_naming_no_value(monkeypatch):
    # Given a family whose code fails on some payload (here: a KeyError quoting the input)
    family = registry.BY_TYPE["com.twilio.comms-api.message.queued"]

    def broken(event, data):
        raise KeyError(data.message_id)

    monkeypatch.setattr(family, "entity_id", broken)
    with pytest.raises(Poison) as caught:
        route(CloudEvent.model_validate(f.message("queued", message_id="SECRET-VALUE")))
    assert caught.value.reason == "invalid_payload"
    assert "SECRET-VALUE" not in caught.value.detail and "KeyError" in caught.value.detail


@pytest.mark.parametrize(
    "event",
    [
        f.message("queued", message_id=""),
        f.cloudevent("com.twilio.comms-api.message.sent", {"attempt": "1"}),  # no message_id
        f.message("sent", attempt="two"),
        f.message("sent", attempt="-1"),
        f.message("sent", attempt=[1]),  # once a TypeError that failed the whole batch
        f.message("sent", attempt={"a": 1}),
        f.message("sent", attempt=1.5),
        f.message("sent", attempt="1" * 5000),
        f.cloudevent("com.twilio.comms-api.operation.completed", {}),
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
