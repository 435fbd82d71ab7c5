"""Driving the two real handlers the way Lambda and Twilio do."""

import base64
import json
import uuid

from sink_dev.samples import kinesis_event, webhook_event


def kinesis_batch(items: list[dict | bytes], first_sequence: int = 1) -> dict:
    """A Lambda Kinesis event: CloudEvents as Twilio writes them, raw bytes as they are."""
    placeholder = {"specversion": "1.0"}
    event = kinesis_event([item if isinstance(item, dict) else placeholder for item in items], first_sequence)
    for record, item in zip(event["Records"], items):
        if isinstance(item, bytes):
            record["kinesis"]["data"] = base64.b64encode(item).decode()
    return event


def consume(consumer, context, items: list[dict | bytes], first_sequence: int = 1) -> dict:
    """Invoke the Kinesis consumer with one batch; returns its partial-batch response."""
    return consumer.lambda_handler(kinesis_batch(items, first_sequence), context)


def failed_sequences(response: dict) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def post(webhook, context, body: str | list | dict, **signing) -> tuple[int, dict]:
    """POST a signed delivery to the webhook; returns (status code, JSON answer)."""
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    event = webhook_event(text, **signing)
    event["requestContext"]["requestId"] = str(uuid.uuid4())  # API Gateway: one id per request, retries too
    response = webhook.lambda_handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def without_deadline(monkeypatch) -> None:
    """Let the webhook finish whatever the wall clock says.

    Its answer deadline is wall-clock time (covered by its own tests): on a loaded machine moto can
    pass it and the webhook rightly answers 503. Tests about what the input decides run without it.
    """
    from twilio_sink import webhook

    monkeypatch.setattr(webhook, "receive", lambda event, remaining_millis=None: webhook.handle(event))
