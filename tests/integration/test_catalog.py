"""The catalog beyond the seeds through both real handlers: kept unmodelled types, time fallback, accounts."""

import random

import pytest

from sink_dev.samples import SAMPLE_ACCOUNT_SID, load_samples
from tests.support import factories as f
from tests.support.expectations import expected_final
from tests.support.sinks import consume, post, without_deadline
from twilio_sink.envelope import CloudEvent
from twilio_sink.registry import family_of, route

SAMPLES = load_samples()
UNMODELLED = f.cloudevent("com.twilio.conversations.participant.added", {"ParticipantSid": "MB1"},
                          event_id="EZ-conversation-participant")


def test_an_unmodelled_type_is_stored_and_notified_once_through_both_doors_and_never_dead_lettered(
        stack, consumer, webhook, context, monkeypatch):
    without_deadline(monkeypatch)
    # Given a type no family models, delivered twice on the stream and twice to the webhook
    assert consume(consumer, context, [UNMODELLED, UNMODELLED]) == {"batchItemFailures": []}
    status, answer = post(webhook, context, [UNMODELLED, UNMODELLED])
    # Then it is one `event` entity, one history item, one notification, no dead letter
    assert status == 200 and answer["duplicate"] == 2 and answer["dead_lettered"] == 0
    state = stack.states()["event#EZ-conversation-participant"]
    assert (state["entity"], state["id"], state["status"], state["event_type"]) == (
        "event", "EZ-conversation-participant", "received", UNMODELLED["type"])
    assert len(stack.history(state["pk"])) == 1
    [note] = stack.notifications()
    assert note["_attributes"] == {"entity": "event", "status": "received", "event_type": UNMODELLED["type"],
                                   "account_sid": SAMPLE_ACCOUNT_SID}
    assert stack.dead_letters() == []


@pytest.mark.parametrize("door", ["kinesis", "webhook"])
def test_an_event_without_time_takes_its_payload_timestamp(stack, consumer, webhook, context, door, monkeypatch):
    without_deadline(monkeypatch)
    event = f.cloudevent("com.twilio.messaging.message.delivered",
                         {"messageSid": "SM1", "timestamp": "2025-06-16T17:00:57.563495225Z"})
    del event["time"]
    if door == "kinesis":
        assert consume(consumer, context, [event]) == {"batchItemFailures": []}
    else:
        assert post(webhook, context, [event])[0] == 200
    state = stack.states()["message#SM1"]
    assert state["status"] == "delivered" and state["event_time"] == "2025-06-16T17:00:57.563495Z"
    assert [n["event_time"] for n in stack.notifications()] == ["2025-06-16T17:00:57.563495Z"]


def test_every_state_records_the_account_its_events_name(stack, consumer, context):
    # Given every sample (two accounts: the main one and a subaccount's voice and Verify events)
    assert consume(consumer, context, SAMPLES) == {"batchItemFailures": []}
    states = stack.states()
    expected: dict[str, str] = {}
    for sample in SAMPLES:
        event = CloudEvent.model_validate(sample)
        change = route(event)
        account = family_of(event.type).account_sid(event)
        if account:
            expected[change.pk] = account
    # Then each state item carries account_sid, whichever of its events named it
    assert len(set(expected.values())) == 2
    assert {pk: states[pk].get("account_sid") for pk in expected} == expected


def test_every_sample_in_any_order_and_repeated_ends_in_the_expected_states_with_one_note_per_change(
        stack, consumer, webhook, context, monkeypatch):
    without_deadline(monkeypatch)
    # Given the samples shuffled, repeated, and split across both doors
    rng = random.Random(11)
    events = SAMPLES + rng.sample(SAMPLES, len(SAMPLES) // 2)
    rng.shuffle(events)
    half = len(events) // 2
    assert consume(consumer, context, events[:half]) == {"batchItemFailures": []}
    status, answer = post(webhook, context, events[half:])
    assert status == 200 and answer["dead_lettered"] == 0
    # Then the final states are the oracle's, and each notification announces a different change
    states = stack.states()
    assert {pk: s["status"] for pk, s in states.items()} == {
        f"{e['entity']}#{e['id']}": e["status"] for e in expected_final()}
    notes = stack.notifications()
    assert len({(n["entity"], n["id"], n["event_id"]) for n in notes}) == len(notes)
    assert stack.dead_letters() == []


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (2, 0, 3, 1)])
def test_one_message_reported_by_both_message_families_ends_the_same_in_any_order(stack, consumer, context, order):
    # Given one SID reported by the Communications API (no attempt) and by Programmable Messaging
    pm = "com.twilio.messaging.message."
    events = [f.message("queued", message_id="SM1", attempt=None, seconds=0),
              f.cloudevent(pm + "sent", {"messageSid": "SM1", "messageStatus": "SENT"}, seconds=1),
              f.message("delivered", message_id="SM1", attempt=None, seconds=2),
              f.cloudevent(pm + "read", {"messageSid": "SM1", "messageStatus": "READ"}, seconds=3)]
    # When they arrive in this order, one per batch
    for n, index in enumerate(order):
        assert consume(consumer, context, [events[index]], first_sequence=n + 1) == {"batchItemFailures": []}
    # Then one entity, whose status is the highest-ranked event whatever the order
    state = stack.states()["message#SM1"]
    assert (state["status"], state["event_type"]) == ("read", pm + "read")
    assert len(stack.history("message#SM1")) == 4
