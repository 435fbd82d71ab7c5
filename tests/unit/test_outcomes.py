"""The delivery-health tally (outcomes.py) and what the families declare for it, without AWS."""

from dataclasses import replace

import pytest

from tests.support import factories
from tests.support.factories import A2P, cloudevent
from twilio_sink.envelope import to_cloudevent
from twilio_sink.families.base import Family
from twilio_sink.outcomes import NO_CODE, OTHER_CODE, Tally, bounded_code
from twilio_sink.registry import FAMILIES, family_of, route

AC = "AC" + "1" * 32


def routed(event: dict):
    change = route(to_cloudevent(event))
    return family_of(change.event.type), change


def programmable(status: str, **data) -> dict:
    return cloudevent("com.twilio.messaging.message." + status, {"messageSid": "SM1", **data}, 5)


@pytest.mark.parametrize(("event", "code"), [
    (factories.message("failed", error_code="30007"), "30007"),
    (factories.message("failed", error_code=" 30007 "), "30007"),
    (programmable("failed", errorCode=30034), "30034"),  # an integer in the schema
    (programmable("failed", errorCode="30034"), "30034"),  # a string in a changelog example
    (programmable("failed", errorCode=True), None),  # not a code
    (programmable("failed", errorCode=""), None),
    (programmable("failed", errorCode=None), None),
    (factories.message("failed"), None),
])
def test_the_error_code_is_the_payloads_whatever_its_json_type(event, code):
    # Read from the raw payload, as the account is: a shape the model would refuse states no code either.
    cloud = to_cloudevent(event)
    assert family_of(cloud.type).error_code(cloud) == code


def test_families_without_error_fields_state_no_code():
    family, change = routed(factories.brand("brand-failure"))
    assert family.error_fields == () and family.error_code(change.event) is None


@pytest.mark.parametrize(("code", "bounded"), [("30007", "30007"), ("21610", "21610"), ("12345", OTHER_CODE),
                                               (None, NO_CODE), ("", OTHER_CODE)])
def test_codes_are_bounded_to_the_documented_ones(code, bounded):
    assert bounded_code(code) == bounded


def test_final_statuses_are_outcomes_with_their_account():
    tally = Tally()
    for status in ("queued", "sent", "delivered"):
        tally.add(*routed(factories.message(status)), AC)
    assert tally.outcomes == {("comms-messages", "delivered", AC): 1}
    assert tally.errors == {} and tally.setbacks == {}


def test_failures_count_their_code_only_in_families_that_state_one():
    tally = Tally()
    tally.add(*routed(factories.message("undelivered", error_code="30003")), None)
    tally.add(*routed(programmable("failed", errorCode=99999)), AC)
    tally.add(*routed(programmable("delivered", errorCode=30003)), AC)  # delivered: not a failure
    assert tally.errors == {("30003", None): 1, (OTHER_CODE, AC): 1}


def test_latency_is_from_sent_to_the_outcome_and_never_negative():
    tally = Tally()
    family, delivered = routed(factories.message("delivered", seconds=4))
    tally.add(family, delivered, None, sent_time=factories.at(1).replace("Z", "000Z"))
    tally.add(family, delivered, None)  # no `sent` replaced: no sample
    tally.add(family, delivered, None, sent_time=factories.at(9).replace("Z", "000Z"))  # clocks disagree
    tally.add(*routed(factories.message("read", seconds=8)), None, sent_time=factories.at(1).replace("Z", "000Z"))
    assert dict(tally.latencies) == {"comms-messages": [3000.0]}


def test_setbacks_name_their_entity_apart_from_the_count():
    tally = Tally()
    tally.add(*routed(factories.brand("brand-failure", brandsid="BN9")), AC)
    tally.add(*routed(cloudevent(A2P + "toll-free-verification.rejected", {"tollfreeverificationsid": "HH9"})), AC)
    tally.add(*routed(factories.brand("brand-registered")), AC)
    assert tally.setbacks == {"brands": 1, "toll-free": 1}
    assert tally.setback_entities == [("brand", "BN9", "failed"), ("tollfree_verification", "HH9", "rejected")]


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_setbacks_and_finals_are_status_words_of_their_family(family: Family):
    assert family.setbacks <= set(family.status_words)
    assert family.final <= set(family.status_words)


def test_a_change_is_tallied_by_its_own_status():
    family, change = routed(factories.message("delivered"))
    tally = Tally()
    tally.add(family, replace(change, status="failed"), None)
    assert tally.outcomes == {("comms-messages", "failed", None): 1}
