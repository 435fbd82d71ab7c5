"""The `reason` and `detail` of every kind of dead letter (contract 4), word for word.

An operator reads `detail` to fix the sender, so its words are part of the contract: which field,
what is wrong, never the value. Also the size limit's exact edge and the lone-surrogate rule.
"""

import json
import re
import time
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel, ValidationError

from tests.support import factories as f
from twilio_sink import registry
from twilio_sink.envelope import MAX_EVENT_BYTES, decode_text, describe, parse_json, split_webhook_body, to_cloudevent
from twilio_sink.poison import Poison
from twilio_sink.times import now_utc


def poison(function, *args) -> tuple[str, str]:
    with pytest.raises(Poison) as caught:
        function(*args)
    assert str(caught.value) == f"{caught.value.reason}: {caught.value.detail}"
    return caught.value.reason, caught.value.detail


@pytest.mark.parametrize(("function", "argument", "reason", "detail"), [
    (decode_text, b"\xff", "undecodable",
     "not UTF-8 text: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"),
    (decode_text, b"x" * (MAX_EVENT_BYTES + 1), "oversized", "64001 bytes, more than the 64000 accepted"),
    (parse_json, "{", "not_json",
     "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    (parse_json, "[" * 100_000, "not_json", "JSON nested too deeply"),
    (parse_json, '{"a": "\\ud800"}', "undecodable", "a string holds a lone surrogate escape"),
    (to_cloudevent, [1], "not_cloudevent", "a CloudEvent is a JSON object, got list"),
    (to_cloudevent, "x", "not_cloudevent", "a CloudEvent is a JSON object, got str"),
    (split_webhook_body, "42", "not_cloudevent", "body is JSON int, not an array or object"),
    (split_webhook_body, "null", "not_cloudevent", "body is JSON NoneType, not an array or object"),
])
def test_each_poison_has_its_reason_and_words(function, argument, reason, detail):
    assert poison(function, argument) == (reason, detail)


def test_an_envelope_names_every_bad_attribute():
    event = f.message("queued") | {"time": "+15555550100", "specversion": ""}
    assert poison(to_cloudevent, event) == ("not_cloudevent", "specversion: String should have at least 1 character; "
                                            "time: Value error, time must be an RFC 3339 timestamp with a time zone")


def test_a_payload_invalid_for_its_type_names_the_type_and_the_field():
    event = to_cloudevent(f.cloudevent("com.twilio.comms-api.message.queued", {"attempt": 1}))
    assert poison(registry.route, event) == (
        "invalid_payload", "com.twilio.comms-api.message.queued: message_id: Field required")


def test_an_unknown_type_is_no_dead_letter_but_an_event_kept():
    change = registry.route(to_cloudevent(f.cloudevent("com.twilio.not-modelled", {})))
    assert (change.entity, change.status) == ("event", "received")


def test_a_dataschema_that_is_no_schema_url_is_counted_without_repeating_it(capsys):
    # Whatever `dataschema` holds (a phone number, say) never reaches a metric dimension or a letter
    capsys.readouterr()
    event = to_cloudevent(f.message("queued") | {"dataschema": "+15555550100"})
    assert registry.route(event).status == "queued"
    assert "+15555550100" not in capsys.readouterr().out


def test_an_event_without_any_time_says_which_fields_were_read():
    event = to_cloudevent({k: v for k, v in f.cloudevent("com.twilio.messaging.message.sent",
                                                          {"messageSid": "SM1"}).items() if k != "time"})
    assert poison(registry.route, event) == (
        "invalid_payload", "time: missing, and no timestamp in data (read: timestamp, dateUpdated)")


def test_the_size_limit_is_inclusive():
    assert decode_text(b"x" * MAX_EVENT_BYTES) == "x" * MAX_EVENT_BYTES
    event = f.message("queued")
    event["data"]["pad"] = ""
    event["data"]["pad"] = "x" * (MAX_EVENT_BYTES - len(json.dumps(event, separators=(",", ":"))))
    assert len(json.dumps(event, separators=(",", ":"))) == MAX_EVENT_BYTES
    assert to_cloudevent(event).data["pad"]
    event["data"]["pad"] += "x"
    assert poison(to_cloudevent, event) == ("oversized", "event larger than the 64000 bytes accepted")


def test_text_beyond_ascii_is_kept_and_only_a_lone_surrogate_is_poison():
    assert parse_json('{"a": "caf\\u00e9 \\ud83d\\ude00"}') == {"a": "café 😀"}
    assert parse_json('{"a": "\\\\ud800"}') == {"a": "\\ud800"}  # an escaped backslash, not an escape


class Nested(BaseModel):
    numbers: list[int]
    by_key: dict[str, int]


def test_describe_names_list_positions_and_fields_but_never_a_dicts_keys():
    with pytest.raises(ValidationError) as caught:
        Nested.model_validate({"numbers": [1, "x"], "by_key": {"+15555550100": "y", "ok": "z"}})
    assert describe(caught.value) == ("numbers.1: Input should be a valid integer, unable to parse string as an "
                                      "integer; by_key.[key]: Input should be a valid integer, unable to parse "
                                      "string as an integer; by_key.ok: Input should be a valid integer, unable to "
                                      "parse string as an integer")


def test_now_is_fixed_width_utc_with_microseconds_whatever_the_local_zone(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Kathmandu")  # +05:45: no rounding can hide a local time
    time.tzset()
    try:
        stamp = now_utc()
    finally:
        monkeypatch.undo()
        time.tzset()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamp)
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - moment).total_seconds()) < 3600  # the zone is off by 5:45 hours
