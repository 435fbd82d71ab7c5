"""Order keys are stored in the table (contract 2's `order_key`) and compared by DynamoDB's conditions
against keys written by earlier versions: their text is a compatibility promise, pinned here for one
seed event of each family. Also what `plan` returns beyond the winner, and the notification's exact text.
"""

import json
from dataclasses import replace

import pytest

from sink_dev.samples import SAMPLE_ACCOUNT_SID, load_samples
from tests.support import factories as f
from twilio_sink.envelope import CloudEvent
from twilio_sink.notify import notification
from twilio_sink.order_keys import key, padded
from twilio_sink.precedence import plan
from twilio_sink.registry import route
from twilio_sink.state import Claim, holder

SEED = {sample["id"]: sample for sample in load_samples()}


def change(event: dict):
    return route(CloudEvent.model_validate(event))


@pytest.mark.parametrize(("event_id", "order_key"), [
    ("AC7052102cd33665b8046063f51b60605c", "2025-06-10T14:00:02.113000Z|AC7052102cd33665b8046063f51b60605c"),
    ("EZffe0cfa16423ccbd7b0add2020623cbc",
     "2025-06-10T14:05:12.381000Z|001749564312071|000000000000000|EZffe0cfa16423ccbd7b0add2020623cbc"),
    ("EZ7e5c3d49833ca7529ec75a6a3809ba4a",
     "2025-06-10T15:40:19.226000Z|001749570018052|001749570019226|EZ7e5c3d49833ca7529ec75a6a3809ba4a"),
    ("EZ5fb05855f50c8bb3d1a05a3a0f2f6078",
     "2025-06-12T18:23:05.412000Z|001749752585336|001749752585412|EZ5fb05855f50c8bb3d1a05a3a0f2f6078"),
    ("EZ00e46421a5339a0f56768452ee671660", "0|2025-06-16T16:00:00.208000Z|EZ00e46421a5339a0f56768452ee671660"),
    ("EZ90424c952ab7ddf6718c5b53e118a899",
     "0000000001|2|2025-06-16T17:00:01.350000Z|EZ90424c952ab7ddf6718c5b53e118a899"),
    ("EZ44edb0db8f6e1cabf50df704506dc2ae",
     "0000000000|0|2025-06-16T17:05:12.338000Z|EZ44edb0db8f6e1cabf50df704506dc2ae"),
])
def test_the_stored_order_key_of_each_family_keeps_its_format(event_id, order_key):
    assert change(SEED[event_id]).order_key == order_key


def test_key_and_padding_are_fixed_width_text():
    assert key("a", "b", "c") == "a|b|c"
    assert padded(42) == "000000000000042" and padded(7, 3) == "007"
    # an A2P payload without `updateddate` / `timestamp` sorts as zero for each
    assert change(f.brand("brand-registered", updateddate=0)).order_key.split("|")[1:3] == ["0" * 15, "0" * 15]


def test_a_message_carries_its_operation_for_the_index_only_when_it_has_one():
    # (the account the factory's `source` names is recorded too: see tests/unit/test_families.py)
    def operation(event):
        return {k: v for k, v in change(event).indexed.items() if k != "account_sid"}

    assert operation(f.message("queued", operation_id="OP9")) == {"operation_id": "OP9"}
    assert operation(f.message("queued", operation_id="")) == {}
    assert operation(f.message("queued")) == {}


def test_plan_lists_the_stale_and_duplicate_changes_themselves():
    sent, queued = change(f.message("sent", seconds=1)), change(f.message("queued"))
    result = plan(None, [sent, queued, sent])
    assert result.applied == [(sent, None)]
    assert result.stale == [queued] and result.duplicates == [sent]


def test_an_event_repeated_inside_one_group_is_a_duplicate_the_second_time():
    queued = change(f.message("queued"))
    result = plan(None, [queued, queued])
    assert result.applied == [(queued, None)] and result.duplicates == [queued]


def test_plan_notifications_announce_each_applied_change_with_its_previous_status():
    queued, sent = change(f.message("queued")), change(f.message("sent", seconds=1))
    current = f.stored("scheduled", "0", 1)
    notes = f.notices(plan(current, [queued, sent]))
    assert [(n.key, json.loads(n.body)["status"], json.loads(n.body)["previous_status"]) for n in notes] == [
        (queued.order_key, "queued", "scheduled"), (sent.order_key, "sent", "queued")]


def test_the_notification_is_compact_json_that_keeps_text_as_it_is():
    event = f.message("queued", body="café")
    note = notification(change(event), None)
    assert note.key == change(event).order_key
    assert note.body == json.dumps(json.loads(note.body), separators=(",", ":"), ensure_ascii=False)
    assert "café" in note.body and " " not in note.body.replace("café", "")
    assert note.attributes == {"entity": "message", "status": "queued", "event_type": event["type"],
                               "account_sid": SAMPLE_ACCOUNT_SID}


def test_a_republished_notification_is_rebuilt_from_the_event_and_its_claim():
    # Given a change applied by this carrier whose notification is not proven published
    queued = replace(change(f.message("queued")), carrier="webhook:req-1")
    claim = Claim(previous="scheduled", event_time=queued.event.time_utc, holder=holder(queued.carrier), until=10)
    current = f.stored("queued", queued.order_key, 1, {queued.event.id: claim})
    # When the same carrier redelivers it
    result = plan(current, [queued], now=5.0, until=20)
    # Then it is a duplicate whose notification is published again, with the stored previous status
    assert result.duplicates == [queued] and result.applied == []
    [again] = f.notices(result)
    assert again == notification(queued, "scheduled")
    assert again.attributes == {"entity": "message", "status": "queued", "event_type": f.MESSAGE + "queued",
                                "account_sid": SAMPLE_ACCOUNT_SID}
    assert result.claims[queued.event.id].until == 20


def test_a_claim_is_stored_as_one_short_text_and_read_back_unchanged():
    claim = Claim(previous="scheduled", event_time="2026-01-01T12:00:00.000000Z", holder=holder("kinesis:7"), until=99)
    other_time = "2026-01-01T12:00:05.000000Z"  # the state item's own event_time: another event won
    assert claim.text() == f"scheduled|2026-01-01T12:00:00.000000Z|{holder('kinesis:7')}|99"
    assert Claim.from_text(claim.text(), other_time) == claim
    assert Claim.from_text(claim.text(other_time), other_time) == claim
    first = Claim(previous=None, event_time="2026-01-01T12:00:00.000000Z", holder="published", until=0)
    assert first.text() == "|2026-01-01T12:00:00.000000Z|published|0" and Claim.from_text(first.text(), other_time) == first


def test_the_winners_claim_leaves_out_the_time_its_state_item_holds_already():
    # ~27 bytes fewer on most state items: the difference between 1 and 2 write units for many of them.
    claim = Claim(previous="queued", event_time="2026-01-01T12:00:00.000000Z", holder="published", until=0)
    assert claim.text("2026-01-01T12:00:00.000000Z") == "queued||published|0"
    assert Claim.from_text("queued||published|0", "2026-01-01T12:00:00.000000Z") == claim
    # the holder is 8 hex characters whatever the carrier: a 56-digit sequence number stays small
    assert len(holder("kinesis:" + "4" * 56)) == 8 and holder("a") != holder("b")


def test_a_stale_event_repeated_in_one_group_is_stale_once_then_a_duplicate():
    sent, queued = change(f.message("sent", seconds=1)), change(f.message("queued"))
    result = plan(None, [sent, queued, queued], until=10)
    assert result.stale == [queued] and result.duplicates == [queued]


def test_a_claim_whose_lease_ends_now_is_taken_over():
    queued = replace(change(f.message("queued")), carrier="webhook:req-2")
    claim = Claim(previous=None, event_time=queued.event.time_utc, holder=holder("webhook:req-1"), until=10)
    current = f.stored("queued", queued.order_key, 1, {queued.event.id: claim})
    assert [c for c, _ in plan(current, [queued], now=10.0, until=30).republish] == [queued]
    assert plan(current, [queued], now=9.5, until=30).deferred == {queued.event.id}
