"""Calls, toll-free verifications and Programmable Messaging messages against the fake Twilio REST API:
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
