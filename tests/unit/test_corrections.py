"""How each reconciled family writes Twilio's answer as one of its own events (its resource's `correction`).

Reconciliation (the reconcile package) sends that event through the pipeline: routing it must set
exactly the status Twilio gave, to the same entity, in the family's payload shape, keeping what was stored.
"""

import pytest

from sink_dev.samples import load_samples
from twilio_sink.envelope import CloudEvent
from twilio_sink.families.calls import PREFIXES
from twilio_sink.reconcile.resources import RESOURCES
from twilio_sink.registry import FAMILIES, family_of, route

RECONCILED = [family for family in FAMILIES if family.quiet_after is not None]
SAMPLES = load_samples()


def stored_sample(family) -> dict:
    """A sample event of the family: its payload is what a state item stores."""
    return next(sample for sample in SAMPLES if family_of(sample["type"]) is family)


def corrected(family, status: str, answered: dict | None = None, stored: dict | None = None):
    sample = stored or stored_sample(family)
    event_type, data = RESOURCES[type(family)].correction(status, sample["data"], answered or {})
    # As corrections.synthetic_event writes it: the family's type, no dataschema.
    event = {name: value for name, value in sample.items() if name != "dataschema"}
    return event_type, data, route(CloudEvent.model_validate(event | {"type": event_type, "data": data}))


CASES = [(family, status) for family in RECONCILED for status in family.status_words]


@pytest.mark.parametrize(("family", "status"), CASES, ids=[f"{f.name}:{s}" for f, s in CASES])
def test_a_correction_routes_to_the_same_entity_with_exactly_twilios_status(family, status):
    sample = stored_sample(family)
    event_type, _, change = corrected(family, status)
    assert family_of(event_type) is family
    assert (change.entity, change.status) == (family.entity, status)
    assert change.entity_id == route(CloudEvent.model_validate(sample)).entity_id


@pytest.mark.parametrize("family", RECONCILED, ids=lambda f: f.name)
def test_a_correction_keeps_the_stored_payload_under_the_answers_fields(family):
    sample = stored_sample(family)
    stored = sample | {"data": sample["data"] | {"kept": "stored", "replaced": "stored"}}
    _, data, _ = corrected(family, family.status_words[-1], {"replaced": "answered"}, stored)
    flat = data | ((data.get("request") or {}).get("parameters") or {})
    assert (flat["kept"], flat["replaced"]) == ("stored", "answered")


def test_a_programmable_messaging_correction_restates_the_status_in_its_payload():
    family = next(f for f in RECONCILED if f.name == "message-status")
    assert stored_sample(family)["data"]["eventName"] == "com.twilio.messaging.message.queued"
    event_type, data, _ = corrected(family, "delivered")
    assert event_type == "com.twilio.messaging.message.delivered"
    # Both fields that restate it say the corrected status, none the stored one.
    assert data["messageStatus"] == "DELIVERED"
    assert data["eventName"] == event_type


@pytest.mark.parametrize(("status", "suffix"), [
    ("queued", "initiated"), ("initiated", "initiated"), ("ringing", "ringing"), ("in-progress", "answered"),
    ("completed", "completed"), ("busy", "completed"), ("no-answer", "completed"), ("failed", "completed"),
    ("canceled", "completed"),
])
def test_a_call_correction_takes_the_callback_twilio_sends_for_that_status(status, suffix):
    # Twilio reports every end of a call with the `completed` callback; its CallStatus says which.
    calls = next(f for f in RECONCILED if f.name == "calls")
    sample = next(s for s in SAMPLES if s["type"].startswith(PREFIXES[1]))  # stored from the deprecated types
    event_type, data, _ = corrected(calls, status, {"AccountSid": "AC" + "1" * 32}, sample)
    assert event_type == PREFIXES[0] + suffix  # always the current types
    parameters = data["request"]["parameters"]
    assert parameters["CallStatus"] == status
    assert parameters["AccountSid"] == "AC" + "1" * 32
    assert parameters["CallSid"] == sample["data"]["request"]["parameters"]["CallSid"]
    assert data["request"]["method"] == sample["data"]["request"]["method"]


def test_a_call_stored_without_a_request_gets_one():
    calls = next(f for f in RECONCILED if f.name == "calls")
    sample = stored_sample(calls)
    bare = sample | {"data": {"sid": sample["data"]["sid"], "timestamp": sample["data"]["timestamp"]}}
    _, data, change = corrected(calls, "busy", {"CallSid": sample["data"]["sid"]}, bare)
    assert data["request"] == {"parameters": {"CallSid": sample["data"]["sid"], "CallStatus": "busy"}}
    assert change.status == "busy"
