"""Calls, toll-free verifications and Programmable Messaging messages against the stand-in of Twilio's REST API:
each family's stuck entity brought to Twilio's status once, in its own type and payload."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.reconcile.histories import call_event, call_sid, message_sid, pm_event, tollfree_event, tollfree_sid
from tests.reconcile.test_reconciler import deliver_while_twilio_is_asked
from tests.support import factories
from tests.support.sinks import consume

LATER = factories.BASE_TIME + timedelta(seconds=30)


def far() -> float:
    return time.monotonic() + 3600


# (what arrived, what Twilio says, the pk, Twilio's status in the family's words, the correction's type)
CASES = {
    "call-busy": (lambda: [call_event("ringing", call_sid(1), "ringing", 1)],
                  lambda fake: fake.call(call_sid(1), "busy", LATER), f"call#{call_sid(1)}", "busy",
                  "com.twilio.voice.status-callback.call.completed"),
    "call-in-progress": (lambda: [call_event("initiated", call_sid(2), "initiated", 1)],
                         lambda fake: fake.call(call_sid(2), "in-progress", LATER), f"call#{call_sid(2)}",
                         "in-progress", "com.twilio.voice.status-callback.call.answered"),
    "tollfree-approved": (lambda: [tollfree_event("pending-review", tollfree_sid(1), 1)],
                          lambda fake: fake.tollfree_verification(tollfree_sid(1), "TWILIO_APPROVED", LATER),
                          f"tollfree_verification#{tollfree_sid(1)}", "approved",
                          "com.twilio.messaging.compliance.toll-free-verification.request-approved"),
    "pm-delivered": (lambda: [pm_event("sent", message_sid(1), 1)],
                     lambda fake: fake.message(message_sid(1), "delivered", LATER), f"message#{message_sid(1)}",
                     "delivered", "com.twilio.messaging.message.delivered"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_stuck_entity_is_corrected_once_in_its_familys_shape(case, stack, consumer, context, twilio_api,
                                                               make_reconciler):
    arrived, truth, pk, status, event_type = CASES[case]
    consume(consumer, context, arrived())
    previous = stack.states()[pk]["status"]
    stack.notifications()
    truth(twilio_api)

    counts = make_reconciler().run(far())

    state = stack.states()[pk]
    assert (state["status"], state["event_type"]) == (status, event_type)
    assert [(n["status"], n["previous_status"], n["event_type"]) for n in stack.notifications()] == [
        (status, previous, event_type)]
    assert counts["corrected"] == 1 and counts["checked"] == 1
    data = json.loads(state["data"])
    if pk.startswith("call#"):
        assert data["request"]["parameters"]["CallStatus"] == status
    if "messageSid" in data:
        assert data["messageStatus"] == status.upper() and data["accountSid"] == factories.SAMPLE_ACCOUNT_SID
    # A repeated run (Twilio unchanged) publishes nothing more.
    assert make_reconciler(now=datetime.now(UTC) + timedelta(days=30)).run(far())["corrected"] == 0
    assert stack.notifications() == []


def test_a_call_answer_never_regresses_what_events_moved_further(stack, consumer, context, twilio_api,
                                                                 make_reconciler):
    # Given a call seen `ringing`; while Twilio is asked (and answers `in-progress`), `completed` arrives
    sid = call_sid(3)
    consume(consumer, context, [call_event("ringing", sid, "ringing", 1)])
    stack.notifications()
    twilio_api.call(sid, "in-progress", factories.BASE_TIME + timedelta(seconds=2))
    deliver_while_twilio_is_asked(twilio_api, sid, lambda: consume(
        consumer, context, [call_event("completed", sid, "completed", 5)], first_sequence=2))

    counts = make_reconciler().run(far())

    assert stack.states()[f"call#{sid}"]["status"] == "completed"
    assert [(n["status"], n["previous_status"]) for n in stack.notifications()] == [("completed", "ringing")]
    assert counts["corrected"] == 0 and counts["checked"] == 1


def test_an_older_tollfree_answer_does_not_undo_a_newer_event(stack, consumer, context, twilio_api, make_reconciler):
    # Given a verification whose newest event says `rejected`, and Twilio's answer last updated before it
    sid = tollfree_sid(4)
    consume(consumer, context, [tollfree_event("rejected", sid, 100)])
    stack.notifications()
    twilio_api.tollfree_verification(sid, "PENDING_REVIEW", factories.BASE_TIME + timedelta(seconds=50))

    counts = make_reconciler().run(far())

    assert stack.states()[f"tollfree_verification#{sid}"]["status"] == "rejected"
    assert stack.notifications() == [] and counts["corrected"] == 0


@pytest.mark.parametrize("pk", [f"call#{call_sid(5)}", f"tollfree_verification#{tollfree_sid(5)}"])
def test_404_is_not_found(pk, stack, consumer, context, twilio_api, make_reconciler):
    sid = pk.split("#")[1]
    consume(consumer, context, [call_event("ringing", sid, "ringing", 1) if pk.startswith("call#")
                                else tollfree_event("requested", sid, 1)])

    counts = make_reconciler().run(far())

    assert counts["not_found"] == 1 and counts["checked"] == 0
    assert twilio_api.fetched(sid) == 1


@pytest.mark.parametrize("faults", [[429, 503, 429], [500, 502]])
def test_429_and_5xx_are_retried_for_calls_and_tollfree(faults, stack, consumer, context, twilio_api,
                                                        make_reconciler):
    consume(consumer, context, [call_event("ringing", call_sid(6), "ringing", 1),
                                tollfree_event("requested", tollfree_sid(6), 1)])
    twilio_api.call(call_sid(6), "no-answer", LATER)
    twilio_api.tollfree_verification(tollfree_sid(6), "TWILIO_REJECTED", LATER)
    twilio_api.faults["*"] = list(faults)

    counts = make_reconciler().run(far())

    assert counts["corrected"] == 2 and counts["unreachable"] == 0
    assert len(make_reconciler.sleeps) == len(faults)
    states = stack.states()
    assert states[f"call#{call_sid(6)}"]["status"] == "no-answer"
    assert states[f"tollfree_verification#{tollfree_sid(6)}"]["status"] == "rejected"


# ---- campaigns: Twilio knows them by their messaging service's US A2P resource ------------------------

SERVICE = "MG" + "c" * 32


def campaign_event(suffix: str, sid: str, seconds: float, **data) -> dict:
    return factories.cloudevent(factories.A2P + "campaign-registration." + suffix, {
        "campaignsid": sid, "messagingservicesid": SERVICE, "accountsid": factories.SAMPLE_ACCOUNT_SID, **data},
        seconds)


def test_a_campaign_is_found_by_listing_its_messaging_services_a2p_resources(stack, consumer, context, twilio_api,
                                                                              make_reconciler):
    # Given two campaigns (CM…) of one messaging service stuck: one submitted by brand BN…b, Twilio's
    # current campaign of the service (QE…, verified); one whose deletion was submitted, known by its
    # TCR id, which the service no longer holds
    current, deleted = "CM" + "b" * 32, "CM" + "d" * 32
    consume(consumer, context, [
        campaign_event("campaign-submitted", current, 1, brandsid="BN" + "b" * 32),
        campaign_event("suspended-campaign-delete-submitted", deleted, 2, externalcampaignid="CJOLD01"),
    ])
    stack.notifications()
    twilio_api.campaign("QE" + "b" * 32, SERVICE, "VERIFIED", LATER, tcr_id="CJNEW01", brand="BN" + "b" * 32)
    # (two more of other brands, so that the listing takes two pages of the stand-in's two)
    for n in (1, 2):
        twilio_api.campaign(f"QE{n:032x}", SERVICE, "FAILED", LATER, tcr_id=f"CJOTHER{n}", brand=f"BN{n:032x}")

    counts = make_reconciler().run(far())

    # Then the current one is approved, once, with Twilio's TCR id; the deleted one is not found
    state = stack.states()[f"campaign#{current}"]
    assert state["status"] == "approved"
    assert json.loads(state["data"])["externalcampaignid"] == "CJNEW01"
    assert [(n["id"], n["status"], n["previous_status"]) for n in stack.notifications()] == [
        (current, "approved", "submitted")]
    assert stack.states()[f"campaign#{deleted}"]["status"] == "deletion_submitted"
    assert counts["corrected"] == 1 and counts["not_found"] == 1
    # The service's listing was asked once for both (cached for the run: its two pages); no campaign by its CM…
    assert twilio_api.fetched(f"/Services/{SERVICE}/Compliance/Usa2p") == 2
    assert set(twilio_api.listed.values()) == {1}
    assert twilio_api.fetched(current) == twilio_api.fetched(deleted) == 0


@pytest.mark.parametrize(("path", "status"), [
    (f"/messaging/v1/Services/{SERVICE}/Compliance/Usa2p/{'CM' + 'b' * 32}", 404),  # a campaign by its CM…
    (f"/messaging/v1/Services/{SERVICE}/Compliance/Usa2p/{'QE' + 'b' * 32}", 200),
    (f"/messaging/v1/Services/{SERVICE}/Compliance/Usa2p/{'QE' + 'e' * 32}", 404),  # another account's
    (f"/api/2010-04-01/Accounts/{factories.SAMPLE_ACCOUNT_SID}/Messages/{'CA' + '1' * 32}.json", 404),  # a call SID
    (f"/api/2010-04-01/Accounts/{factories.SAMPLE_ACCOUNT_SID}/Calls/{'CA' + '1' * 32}.json", 200),
    (f"/api/2010-04-01/Accounts/{'AC' + 'e' * 32}/Calls/{'CA' + '1' * 32}.json", 401),  # another account's path
    (f"/messaging/v1/Tollfree/Verifications/{'HH' + 'e' * 32}", 404),  # another account's
    (f"/messaging/v1/a2p/BrandRegistrations/{'HH' + '1' * 32}", 404),  # a toll-free SID
])
def test_the_stand_in_refuses_what_twilio_refuses(path, status, twilio_api):
    import requests

    from sink_local.twilio_api import API_KEY_SECRET, API_KEY_SID

    other = "AC" + "e" * 32
    twilio_api.campaign("QE" + "b" * 32, SERVICE, "VERIFIED", LATER)
    twilio_api.campaign("QE" + "e" * 32, SERVICE, "VERIFIED", LATER, account=other)
    twilio_api.call("CA" + "1" * 32, "completed", LATER)
    twilio_api.tollfree_verification("HH" + "e" * 32, "TWILIO_APPROVED", LATER, account=other)
    twilio_api.brand("BN" + "1" * 32, "APPROVED", LATER)

    answer = requests.get(twilio_api.base_url + path, auth=(API_KEY_SID, API_KEY_SECRET), timeout=5)

    assert answer.status_code == status
    assert requests.get(twilio_api.base_url + path, auth=(API_KEY_SID, "wrong"), timeout=5).status_code == 401


def test_retry_after_is_waited_for_within_the_runs_bound(stack, consumer, context, twilio_api, make_reconciler):
    from twilio_sink.reconcile.run import SAFETY_SECONDS

    # Given Twilio answering 429 with Retry-After: 7 to the first request
    consume(consumer, context, [call_event("ringing", call_sid(7), "ringing", 1)])
    twilio_api.call(call_sid(7), "completed", LATER)
    twilio_api.retry_after = "7"
    twilio_api.faults["*"] = [429]

    # When a run has time for it, it waits what Twilio asked, then asks again
    assert make_reconciler().run(far())["corrected"] == 1
    assert make_reconciler.sleeps == [7.0]

    # And a run without that time leaves the entity for the next run, without waiting
    consume(consumer, context, [call_event("ringing", call_sid(8), "ringing", 1)], first_sequence=5)
    twilio_api.call(call_sid(8), "completed", LATER)
    twilio_api.retry_after = "600"
    twilio_api.faults["*"] = [429]
    counts = make_reconciler().run(time.monotonic() + SAFETY_SECONDS + 60)
    assert counts["unreachable"] == 1 and make_reconciler.sleeps == [7.0]
    assert stack.states()[f"call#{call_sid(8)}"]["status"] == "ringing"
