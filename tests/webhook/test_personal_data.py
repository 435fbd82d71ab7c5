"""Phone numbers and message text never reach the logs in clear, through either handler, at DEBUG.

Every path that logs runs here: applied, duplicate and stale events, every kind of dead letter, a
transient AWS failure, a signature rejection, a token read, the deadline. Both the functions' own
JSON logs and every library's records (root logger at DEBUG, as an operator may set it) are read.
"""

import json
import logging

import pytest

from tests.support import factories as f
from tests.support.sinks import consume
from tests.webhook import deliveries
from tests.webhook.logs import json_logs

PHONE = "+15555550123"
OTHER_PHONE = "+15555550177"
TEXT = "Meet me at the usual place at nine"
SECRETS = ("twilio-sink-local-test-token",)


def personal_events() -> list:
    message = {"from": {"address": PHONE, "channel": "SMS"}, "to": {"address": OTHER_PHONE},
               "content": {"text": TEXT}}
    return [
        f.message("queued", **message),
        f.message("sent", seconds=1, **message),
        f.message("delivered", seconds=2, **message),
        f.message("sent", seconds=1, **message),  # stale once delivered is in
        f.phone_number("number-registration.pending") | {"data": {"phonenumbersid": "PN9", "phonenumber": PHONE}},
        # dead letters of every kind, each carrying the personal data in a field or a key
        f.message("queued", message_id="MM2", attempt=f"{PHONE} {TEXT}", **message),
        f.message("queued", message_id="MM3", tags={PHONE: ["not text"], "note": TEXT}),
        f.cloudevent(f"com.twilio.{PHONE}.{TEXT}", {"to": PHONE}),
        {"not": "a cloudevent", "to": PHONE, "text": TEXT},
        f.message("queued") | {"time": f"{PHONE} {TEXT}"},
        f.message("queued", message_id="MM4") | {"data": json.dumps({"to": PHONE})[:-1]},
    ]


@pytest.fixture
def every_log(caplog):
    caplog.set_level(logging.DEBUG)
    with json_logs("DEBUG") as own:
        yield lambda: own.getvalue() + "\n".join(
            f"{record.getMessage()} {record.__dict__}" for record in caplog.records)


def assert_clean(text: str) -> None:
    assert "queued" in text or "signature" in text or "dead letter" in text  # something was logged
    for personal in (PHONE, PHONE[1:], OTHER_PHONE, TEXT, *SECRETS):
        assert personal not in text


def test_the_webhook_never_logs_personal_data(stack, webhook, context, fail, every_log):
    events = personal_events()
    body = json.dumps(events)
    assert webhook.lambda_handler(deliveries.event_for(deliveries.DEFAULT, body), context)["statusCode"] == 400
    assert webhook.lambda_handler(deliveries.event_for(deliveries.DEFAULT, body), context)["statusCode"] == 400
    fail("sns", "publish_batch", times=3)
    fail("dynamodb", "batch_write_item", times=1)
    retry = json.dumps([f.message("read", seconds=3, from_={"address": PHONE}, content={"text": TEXT})])
    assert webhook.lambda_handler(deliveries.event_for(deliveries.DEFAULT, retry), context)["statusCode"] == 503
    forged = deliveries.event_for(deliveries.DEFAULT, body, token="not-the-token")
    assert webhook.lambda_handler(forged, context)["statusCode"] == 403
    not_json = deliveries.event_for(deliveries.DEFAULT, f"{PHONE} {TEXT}")
    assert webhook.lambda_handler(not_json, context)["statusCode"] == 400
    assert_clean(every_log())


def test_the_stream_consumer_never_logs_personal_data(stack, consumer, context, fail, every_log):
    events = personal_events()
    consume(consumer, context, events + [f"{PHONE} {TEXT}".encode(), b"\xff" + PHONE.encode()])
    fail("sns", "publish_batch", times=3)
    response = consume(consumer, context, [f.message("read", seconds=3, content={"text": TEXT})], first_sequence=100)
    assert response["batchItemFailures"]
    assert_clean(every_log())


def test_the_webhook_never_logs_personal_data_when_the_token_is_unreadable_or_the_deadline_passes(
        stack, webhook, context, fail, every_log, monkeypatch):
    import time

    from twilio_sink import aws, pipeline

    body = json.dumps(personal_events())
    # The token read fails (first read of this container, so not served from the cache): 503
    fail("secretsmanager", "get_secret_value", times=1)
    assert webhook.lambda_handler(deliveries.event_for(deliveries.DEFAULT, body), context)["statusCode"] == 503
    # The deadline (4.5 s, conftest) passes while the state is read (the pipeline's clock jumps as a
    # slow call would): 503
    dynamodb, ahead = aws.client("dynamodb"), [0.0]
    monkeypatch.setattr(pipeline.default_pipeline(), "clock", lambda: time.time() + ahead[0])
    real_read = dynamodb.batch_get_item

    def slow_read(**kwargs):
        ahead[0] += 5
        return real_read(**kwargs)

    monkeypatch.setattr(dynamodb, "batch_get_item", slow_read)
    assert webhook.lambda_handler(deliveries.event_for(deliveries.DEFAULT, body), context)["statusCode"] == 503
    text = every_log()
    # Both paths really ran (their own log lines), and neither logged personal data
    assert "auth token unavailable" in text and "deadline reached" in text
    assert_clean(text)
