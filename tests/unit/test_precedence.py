"""Precedence rules of contract 2, table-driven, including every arrival order of a lifecycle."""

import json
from dataclasses import replace
from itertools import permutations

import pytest

from sink_dev.samples import SAMPLE_ACCOUNT_SID
from tests.support import factories as f
from twilio_sink.envelope import CloudEvent
from twilio_sink.notify import notification
from twilio_sink.precedence import plan
from twilio_sink.registry import route
from twilio_sink.state import Claim, holder


def changes(*events):
    return [route(CloudEvent.model_validate(e)) for e in events]


def final_status(current, events):
    result = plan(current, changes(*events))
    return result.winner.status if result.winner else (current.status if current else None)


def replay_one_by_one(events):
    """Feed events one at a time, as separate invocations would, carrying the state forward."""
    current, applied = None, []
    for change in changes(*events):
        result = plan(current, [change])
        if result.winner:
            applied.append(result.winner.status)
            current = f.stored(result.winner.status, result.winner.order_key, (current.version + 1) if current else 1)
    return current, applied


LIFECYCLE = [f.message("queued", seconds=0), f.message("sent", seconds=1),
             f.message("delivered", seconds=2), f.message("read", seconds=3)]


@pytest.mark.parametrize("order", list(permutations(range(4))), ids=lambda o: "-".join(map(str, o)))
def test_every_arrival_order_of_a_full_lifecycle_ends_read(order):
    # Given the four events of one message in some order
    events = [LIFECYCLE[i] for i in order]
    # When they arrive in one batch, and when they arrive one per invocation
    batch = plan(None, changes(*events))
    current, applied_one_by_one = replay_one_by_one(events)
    # Then the final state is `read` either way, and every applied change moved forward
    assert batch.winner.status == "read"
    assert current.status == "read"
    ranks = {"queued": 0, "sent": 1, "delivered": 2, "read": 3}
    applied = [change.status for change, _ in batch.applied]
    assert applied == applied_one_by_one
    assert [ranks[s] for s in applied] == sorted(ranks[s] for s in applied)
    # and exactly the events that outrank all earlier arrivals were applied
    expected, best = [], -1
    for i in order:
        if i > best:
            expected.append(["queued", "sent", "delivered", "read"][i])
            best = i
    assert applied == expected


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        # higher attempt wins even with a lower rank
        ([f.message("delivered", attempt="1", seconds=5), f.message("queued", attempt="2", seconds=1)], "queued"),
        ([f.message("queued", attempt="2", seconds=1), f.message("delivered", attempt="1", seconds=5)], "queued"),
        # attempt compares as an integer, not as text ("10" > "9")
        ([f.message("sent", attempt="10"), f.message("read", attempt="9")], "sent"),
        # missing attempt counts as 0
        ([f.message("read", attempt=None), f.message("queued", attempt="1")], "queued"),
        # equal rank: the later event time wins, whatever the order
        ([f.message("failed", seconds=9), f.message("delivered", seconds=2)], "failed"),
        ([f.message("delivered", seconds=2), f.message("failed", seconds=9)], "failed"),
        ([f.message("undelivered", seconds=3), f.message("delivered", seconds=4)], "delivered"),
        # read outranks a terminal status of the same attempt
        ([f.message("read", seconds=1), f.message("undelivered", seconds=5)], "read"),
        # operations: rank first, then time
        ([f.operation("completed", seconds=1), f.operation("processing", seconds=5)], "completed"),
        ([f.operation("scheduled", seconds=0), f.operation("processing", seconds=1)], "processing"),
        # registrations: the newest time wins, back and forth
        ([f.brand("brand-registered", seconds=5), f.brand("brand-failure", seconds=1)], "registered"),
        ([f.brand("brand-failure", seconds=1), f.brand("brand-registered", seconds=5)], "registered"),
        ([f.brand("brand-registered", seconds=1), f.brand("brand-failure", seconds=5)], "failed"),
        # same time: updateddate decides
        ([f.brand("brand-failure", updateddate=2), f.brand("brand-registered", updateddate=1)], "failed"),
        ([f.phone_number("number-registration.successful", seconds=1),
          f.phone_number("number-deregistration.successful", seconds=2)], "deregistered"),
    ],
)
def test_precedence(events, expected):
    assert final_status(None, events) == expected
    assert final_status(None, list(reversed(events))) == expected


def test_same_rank_and_time_is_decided_the_same_way_in_any_order():
    a, b = f.message("delivered", seconds=1), f.message("failed", seconds=1)
    assert final_status(None, [a, b]) == final_status(None, [b, a])


def test_a_repeated_event_changes_nothing_and_is_a_duplicate():
    queued = f.message("queued")
    first = plan(None, changes(queued))
    stored = f.stored("queued", first.winner.order_key, 1)
    again = plan(stored, changes(queued, queued))
    assert again.applied == [] and len(again.duplicates) == 2 and again.stale == []


def test_an_older_event_is_stale():
    delivered = changes(f.message("delivered", seconds=2))[0]
    result = plan(f.stored("delivered", delivered.order_key, 3), changes(f.message("sent", seconds=1)))
    assert result.winner is None and len(result.stale) == 1


def test_previous_status_chains_through_the_applied_changes():
    result = plan(None, changes(f.message("queued", seconds=0), f.message("sent", seconds=1)))
    assert [(c.status, prev) for c, prev in result.applied] == [("queued", None), ("sent", "queued")]
    stored = f.stored("sent", result.winner.order_key, 1)
    later = plan(stored, changes(f.message("delivered", seconds=2)))
    assert later.applied[0][1] == "sent"


NOW = 1_000_000
LIVE, ENDED = NOW + 60, NOW - 1


def claim(change, previous, carrier, until=LIVE):
    return {change.event.id: Claim(previous, change.event.time_utc, holder(carrier), until)}


def test_applied_changes_are_claimed_by_their_carrier_until_the_lease_ends():
    queued, sent = changes(f.message("queued", seconds=0), f.message("sent", seconds=1))
    result = plan(None, [replace(queued, carrier="kinesis:1"), replace(sent, carrier="kinesis:2")], now=NOW, until=LIVE)
    assert result.claims == claim(queued, None, "kinesis:1") | claim(sent, "queued", "kinesis:2")
    assert result.writes and result.republish == [] and result.deferred == set()


def test_a_redelivered_event_whose_claim_is_unpublished_is_published_again_by_its_own_carrier():
    queued = replace(changes(f.message("queued"))[0], carrier="kinesis:7")
    stored = f.stored("queued", queued.order_key, 1, claims=claim(queued, None, "kinesis:7"))
    result = plan(stored, [queued, queued], now=NOW, until=LIVE + 5)
    assert [n.body for n in f.notices(result)] == [notification(queued, None).body]  # once
    assert result.applied == [] and result.claims[queued.event.id].until == LIVE + 5  # renewed


def test_a_published_claim_is_dropped_and_never_republished():
    queued, sent = changes(f.message("queued", seconds=0), f.message("sent", seconds=1))
    stored = f.stored("queued", queued.order_key, 1, claims=claim(queued, None, queued.carrier))
    result = plan(stored, [queued, sent], proven={queued.event.id}, now=NOW, until=LIVE)
    assert result.republish == [] and result.dropped == {queued.event.id}
    assert set(result.claims) == {sent.event.id}


def test_a_redelivered_event_that_is_now_stale_still_publishes_its_unpublished_claim():
    # Given `failed` then `delivered` were applied together, and the function died before publishing
    failed, delivered = (replace(c, carrier=f"kinesis:{i}") for i, c in
                         enumerate(changes(f.message("failed", seconds=0), f.message("delivered", seconds=1))))
    claims = claim(failed, None, "kinesis:0") | claim(delivered, "failed", "kinesis:1")
    stored = f.stored("delivered", delivered.order_key, 1, claims=claims)
    # When Lambda bisects the retried batch and `failed` comes back alone, it is stale...
    alone = plan(stored, [failed], now=NOW, until=LIVE)
    assert len(alone.stale) == 1
    # ...but its own notification is published again (and only its own: `delivered` may be a live writer's)
    assert [n.key for n in f.notices(alone)] == [failed.order_key]
    # And redelivered together, in any order, both are republished in the order they were applied
    both = plan(stored, [delivered, failed], now=NOW, until=LIVE)
    assert [n.key for n in f.notices(both)] == [failed.order_key, delivered.order_key]
    assert json.loads(f.notices(both)[1].body)["previous_status"] == "failed"


def test_claims_of_events_not_redelivered_are_left_alone():
    queued, sent = changes(f.message("queued", seconds=0), f.message("sent", seconds=1))
    stored = f.stored("queued", queued.order_key, 1, claims=claim(queued, None, "kinesis:1"))
    result = plan(stored, [sent], now=NOW, until=LIVE)
    assert result.republish == [] and [c.status for c, _ in result.applied] == ["sent"]
    assert set(result.claims) == {queued.event.id, sent.event.id}


def test_notification_body_is_contract_3():
    change = changes(f.message("sent", message_id="MM9", seconds=1, to={"address": "+15555550100"}))[0]
    note = notification(change, "queued")
    body = json.loads(note.body)
    assert set(body) == {"entity", "id", "status", "previous_status", "event_type", "event_id", "event_time", "data"}
    assert body["entity"] == "message" and body["id"] == "MM9" and body["status"] == "sent"
    assert body["previous_status"] == "queued"
    assert body["event_time"] == "2026-01-01T12:00:01.000000Z"
    assert body["data"]["to"] == {"address": "+15555550100"}
    assert note.attributes == {"entity": "message", "status": "sent", "event_type": change.event.type,
                               "account_sid": SAMPLE_ACCOUNT_SID}


def test_a_notification_of_an_event_of_no_known_account_has_no_account_attribute():
    # Contract 3: `account_sid` only where the account is known (a filter policy then leaves it out)
    [change] = changes(f.message("sent") | {"source": "/v1/comms-api"})
    assert notification(change, None).attributes == {"entity": "message", "status": "sent",
                                                      "event_type": change.event.type}
    assert notification(replace(change, account_sid="AC" + "1" * 32), None).attributes["account_sid"] == "AC" + "1" * 32


def test_a_live_claim_is_left_to_its_holder_and_an_ended_one_is_taken_over():
    # Given `queued` applied from stream record 7, not yet known published (the holder may be live)
    queued = changes(f.message("queued"))[0]
    stored = f.stored("queued", queued.order_key, 1, claims=claim(queued, None, "kinesis:7"))
    # When the same event arrives through a webhook request meanwhile, it leaves the claim to its holder
    other = plan(stored, [replace(queued, carrier="webhook:r1")], now=NOW, until=LIVE)
    assert other.republish == [] and other.deferred == {queued.event.id} and not other.writes
    # And when record 7 itself is redelivered (its invocation ended), it publishes it
    assert [n.key for n in f.notices(plan(stored, [replace(queued, carrier="kinesis:7")], now=NOW))] == [
        queued.order_key]
    # And once the holder's lease is over, any carrier takes it over
    ended = f.stored("queued", queued.order_key, 1, claims=claim(queued, None, "kinesis:7", until=ENDED))
    taken = plan(ended, [replace(queued, carrier="webhook:r2")], now=NOW, until=LIVE)
    assert [c.event.id for c, _ in taken.republish] == [queued.event.id]
    assert taken.claims[queued.event.id] == Claim(None, queued.event.time_utc, holder("webhook:r2"), LIVE)
