"""NaN, Infinity and numbers that overflow a float are not JSON: Python reads them, so they are refused
where a body or record is parsed (dead letter `invalid_payload`), and whatever is stored or published
stays valid JSON (contracts 2 and 3)."""

import json

import pytest

from sink_dev.samples import webhook_event
from tests.support import factories as f
from tests.support.sinks import consume


def strict(text: str):
    def refuse(literal):
        raise ValueError(literal)
    return json.loads(text, parse_constant=refuse)


NOT_JSON_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e400", "123456789e999999"]


def body_with(number: str, data_as_string: bool = False) -> str:
    data = '{"message_id": "MM1", "attempt": "1", "price": ' + number + "}"
    event = json.dumps(f.message("queued") | {"data": "DATA"})
    return event.replace('"DATA"', json.dumps(data) if data_as_string else data)


@pytest.mark.parametrize("number", NOT_JSON_NUMBERS)
@pytest.mark.parametrize("data_as_string", [False, True], ids=["data-object", "data-json-text"])
def test_a_webhook_body_with_a_non_json_number_is_one_invalid_payload(stack, webhook, context, number, data_as_string):
    text = body_with(number, data_as_string)
    response = webhook.lambda_handler(webhook_event(f"[{text}]"), context)
    assert response["statusCode"] == 400
    assert [p["reason"] for p in json.loads(response["body"])["problems"]] == ["invalid_payload"]
    assert stack.states() == {} and stack.notifications() == []
    [letter] = stack.dead_letters()
    assert letter["reason"] == "invalid_payload" and number.lstrip("-") in letter["raw"]


@pytest.mark.parametrize("number", NOT_JSON_NUMBERS)
@pytest.mark.parametrize("data_as_string", [False, True], ids=["data-object", "data-json-text"])
def test_a_stream_record_with_a_non_json_number_is_an_invalid_payload(stack, consumer, context, number, data_as_string):
    record = body_with(number, data_as_string).encode()
    assert consume(consumer, context, [record, f.message("queued", message_id="MM2")]) == {"batchItemFailures": []}
    assert set(stack.states()) == {"message#MM2"}  # its neighbour is applied
    assert [letter["reason"] for letter in stack.dead_letters()] == ["invalid_payload"]


def test_what_is_stored_and_published_is_strict_json(stack, consumer, webhook, context):
    # Large but finite numbers are JSON, and stay as they were sent.
    event = f.message("queued") | {"data": {"message_id": "MM1", "attempt": "1", "big": 2**70, "small": 1e-300,
                                            "edge": 1.7976931348623157e308}}
    consume(consumer, context, [event])
    [notification] = stack.notifications()
    for text in [json.dumps(notification), stack.states()["message#MM1"]["data"]]:
        assert strict(text)
    assert strict(stack.states()["message#MM1"]["data"])["big"] == 2**70
