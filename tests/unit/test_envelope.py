"""Decoding: what becomes a CloudEvent, and the reason code of everything that does not."""

import json

import pytest

from tests.support import factories as f
from twilio_sink.envelope import MAX_EVENT_BYTES, cloudevent_from_record, split_webhook_body, to_cloudevent
from twilio_sink.poison import Poison


def reason_of(call, *args):
    with pytest.raises(Poison) as caught:
        call(*args)
    return caught.value.reason


def test_data_as_json_string_and_as_object_decode_the_same():
    event = f.message("queued", to={"address": "+15555550100"})
    as_string = event | {"data": json.dumps(event["data"])}
    assert cloudevent_from_record(json.dumps(as_string).encode()).data == to_cloudevent(event).data


def test_unknown_envelope_attributes_are_kept():
    event = to_cloudevent(f.message("queued") | {"traceparent": "00-abc"})
    assert event.model_dump()["traceparent"] == "00-abc"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe\x00", "undecodable"),
        (b"not json", "not_json"),
        (b"[" * (MAX_EVENT_BYTES - 1), "not_json"),  # nested too deeply, under the size cap
        (b"[1, 2]", "not_cloudevent"),
        (b'"a string"', "not_cloudevent"),
        (b"x" * (MAX_EVENT_BYTES + 1), "oversized"),
    ],
)
def test_undecodable_records_have_a_reason(raw, reason):
    assert reason_of(cloudevent_from_record, raw) == reason


@pytest.mark.parametrize(
    "change",
    [
        {"time": "2023-06-15713:51:04.528Z"},  # the seed's typo
        {"time": "2023-06-15T13:51:04"},  # no time zone
        {"time": 1686837061},
        {"id": ""},
        {"data": "not json text"},
        {"data": "[1, 2]"},
        {"data": None},
    ],
)
def test_malformed_envelopes_are_not_cloudevents(change):
    event = f.message("queued") | change
    assert reason_of(to_cloudevent, event) == "not_cloudevent"


def test_missing_required_attribute():
    event = f.message("queued")
    del event["type"]
    assert reason_of(to_cloudevent, event) == "not_cloudevent"


def test_error_detail_names_fields_but_never_echoes_values():
    event = f.message("queued") | {"time": "+15555550100"}
    with pytest.raises(Poison) as caught:
        to_cloudevent(event)
    assert "time" in caught.value.detail and "+15555550100" not in caught.value.detail


def test_webhook_body_may_be_an_array_or_one_object():
    event = f.message("queued")
    assert split_webhook_body(json.dumps([event, event])) == [event, event]
    assert split_webhook_body(json.dumps(event)) == [event]
    assert reason_of(split_webhook_body, "42") == "not_cloudevent"
    assert reason_of(split_webhook_body, "{") == "not_json"
