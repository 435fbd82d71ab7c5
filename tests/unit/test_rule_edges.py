"""The edges of the rules that the mutation run showed no test held: bounds, defaults, exact words.

Each test names the rule it pins; `make mutate` (docs/testing.md) counts what they kill.
"""

from datetime import UTC, datetime, timedelta

import pytest

from sink_dev.samples import load_samples
from tests.support import factories as f
from tests.support.expectations import emitted
from twilio_sink.envelope import CloudEvent, to_cloudevent
from twilio_sink.order_keys import padded
from twilio_sink.poison import Poison
from twilio_sink.precedence import plan
from twilio_sink.registry import accounts_named, dataschema, route
from twilio_sink.times import parse_timestamp

A2P = "com.twilio.messaging.compliance."
TOLL_FREE = A2P + "toll-free-verification."
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def routed(event: dict):
    return route(CloudEvent.model_validate(event))


# ---- timestamps ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    (1, EPOCH + timedelta(milliseconds=1)),  # the smallest epoch-millisecond value taken
    (10**14 - 1, datetime.fromtimestamp((10**14 - 1) / 1000, UTC)),  # the largest (year 5138)
    ("2025-06-16t17:00:57.563495225z", datetime(2025, 6, 16, 17, 0, 57, 563495, tzinfo=UTC)),  # lowercase t, z
    ("2025-06-16 17:00:57+02:00", datetime(2025, 6, 16, 15, 0, 57, tzinfo=UTC)),
    ("Tue, 17 Jun 2025 10:00:00 +0000", datetime(2025, 6, 17, 10, 0, tzinfo=UTC)),
])
def test_payload_timestamps_in_each_form_twilio_writes(value, expected):
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize("value", [
    0, 10**14,  # outside the epoch-millisecond range
    "Tue, 17 Jun 2025 10:00:00 -0000",  # RFC 2822's "-0000": no known zone
])
def test_timestamps_outside_the_forms_are_none(value):
    assert parse_timestamp(value) is None


def test_a_time_out_of_range_is_named_in_the_dead_letter_detail():
    with pytest.raises(Poison) as caught:
        to_cloudevent(f.message("queued") | {"time": "0001-01-01T00:00:00+01:00"})
    assert caught.value.detail == "time: Value error, time is out of the representable range"


# ---- routing -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("event", "recheck"), [
    (f.message("queued"), timedelta(minutes=15)),  # not final: the reconciler asks after the threshold
    (f.message("delivered"), None),  # final: never asked
    (f.cloudevent(A2P + "brand-registration.brand-unverified", {"brandsid": "BN1"}), timedelta(hours=6)),
    (f.cloudevent(A2P + "brand-registration.brand-registered", {"brandsid": "BN1"}), None),
    (f.cloudevent("com.twilio.comms-api.operation.processing", {"operation_id": "OP1"}), None),  # not reconciled
])
def test_a_change_carries_when_reconciliation_may_ask_about_it(event, recheck):
    assert routed(event).recheck_after == recheck


def test_an_event_naming_no_account_carries_no_account_attribute():
    # DynamoDB refuses empty key attributes; an absent one keeps the item out of the index.
    assert "account_sid" not in routed(f.message("sent") | {"source": "/tests"}).indexed


def test_a_family_without_timestamp_fields_says_so_when_time_is_missing():
    event = f.cloudevent("com.twilio.comms-api.operation.processing", {"operation_id": "OP1"})
    del event["time"]
    with pytest.raises(Poison) as caught:
        routed(event)
    assert caught.value.detail == "time: missing, and no timestamp in data (read: none)"


def test_dataschema_is_known_only_for_types_whose_schema_name_is_confirmed():
    assert dataschema("com.twilio.comms-api.message.sent") == "https://events-schemas.twilio.com/CommsApi.MessageSent/4"
    assert dataschema(TOLL_FREE + "requested") is None  # only the namespace `TollFree.` is known


def test_an_event_without_dataschema_is_no_new_schema_version(capsys):
    capsys.readouterr()
    event = f.message("sent")
    del event["dataschema"]
    routed(event)
    assert [m for m in emitted(capsys) if "SchemaVersionsUnknown" in m] == []


# ---- order keys ----------------------------------------------------------------------------------

@pytest.mark.parametrize("sample", load_samples(), ids=lambda s: s["type"].rsplit(".", 1)[-1] + ":" + s["id"][-4:])
def test_every_order_key_ends_with_the_event_id(sample):
    # The id makes the order total: two events never tie, so arrival order never decides.
    assert routed(sample).order_key.split("|")[-1] == sample["id"]


def test_toll_free_events_of_one_time_are_ordered_by_processeddate_then_id():
    def tollfree(status: str, event_id: str, **data) -> dict:
        return f.cloudevent(TOLL_FREE + status, {"tollfreeverificationsid": "HH1", **data}, event_id=event_id)

    older, newer = tollfree("rejected", "EZ2", processeddate=1), tollfree("request-approved", "EZ1", processeddate=2)
    assert plan(None, [routed(newer), routed(older)]).winner.status == "approved"
    # A missing processeddate reads as 0, like the earliest.
    assert routed(tollfree("requested", "EZ3")).order_key.split("|")[1] == padded(0)


def test_an_inbound_message_ranks_as_attempt_zero_like_every_programmable_messaging_event():
    event = f.cloudevent("com.twilio.messaging.inbound-message.received",
                         {"messageSid": "SM1", "timestamp": f.at(0)})
    change = routed(event)
    assert change.order_key == f"0000000000|0|{change.event.time_utc}|{event['id']}"


def test_a_sink_test_id_that_is_no_account_sid_names_no_account():
    event = f.cloudevent("com.twilio.eventstreams.test-event", {"test_id": "t"}, event_id="not-an-account") | {
        "source": "Sink"}
    assert accounts_named(CloudEvent.model_validate(event)) == []


# ---- corrections (reconciliation) ------------------------------------------------------------------

def correction(event: dict):
    from dataclasses import replace

    return replace(routed(event), corrects=True)


def test_a_correction_that_moves_the_status_forward_is_applied():
    stored = routed(f.message("sent", seconds=0))
    result = plan(f.stored("sent", stored.order_key, 1), [correction(f.message("delivered", seconds=5))])
    assert [change.status for change, _ in result.applied] == ["delivered"]


def test_a_correction_that_confirms_the_stored_status_is_stale():
    stored = routed(f.message("sent", seconds=0))
    confirming = correction(f.message("sent", seconds=5))
    result = plan(f.stored("sent", stored.order_key, 1), [confirming])
    assert result.applied == [] and result.stale == [confirming]


def test_an_event_with_the_stored_status_and_a_later_time_is_applied():
    # Only corrections are held back by an equal status: a real event is applied by its key alone.
    stored = routed(f.message("sent", seconds=0))
    result = plan(f.stored("sent", stored.order_key, 1), [routed(f.message("sent", seconds=5))])
    assert [change.status for change, _ in result.applied] == ["sent"]
