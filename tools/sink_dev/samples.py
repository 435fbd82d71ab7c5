"""THE builders of sample events: what Twilio's sinks deliver and what Lambda hands the functions.

One place for the events generator (`twilio-sink events`), the local stack, the bench and the tests.
Everything is deterministic: no randomness, no clock. Webhook events are signed with
LOCAL_TEST_AUTH_TOKEN for the URL Twilio would call: https://<domain><path>?bodySHA256=<hex sha256 of the body>.
"""

import base64
import hashlib
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator

from sink_dev.paths import EVENTS
from sink_ops.records import lambda_record

SAMPLES = EVENTS / "samples" / "cloudevents.json"

# The auth token the local/test webhook events are signed with (documented in events/README.md).
LOCAL_TEST_AUTH_TOKEN = "twilio-sink-local-test-token"
# The Twilio account of every sample event: the one account the local stack accepts (TwilioAccountSids).
SAMPLE_ACCOUNT_SID = "AC7052102cd33665b8046063f51b60605c"
# An ISV's subaccount: the voice and Verify samples come from it (the local stack accepts both).
SAMPLE_SUBACCOUNT_SID = "ACcfc1506f571542825eb878d00c1f9803"

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
STREAM_NAME = "twilio-event-sink"
STREAM_ARN = f"arn:aws:kinesis:{REGION}:{ACCOUNT_ID}:stream/{STREAM_NAME}"
SHARD_ID = "shardId-000000000000"
CONSUMER_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/twilio-event-sink-StreamConsumerFunctionRole-7QX2M4KD9T1B"
# A Kinesis sequence number is a decimal string of up to 128 digits; this is a realistic 56-digit one.
FIRST_SEQUENCE_NUMBER = 49662040581726394105887364123954771221603184742612205570

API_ID = "abc123defg"
DOMAIN = f"{API_ID}.execute-api.{REGION}.amazonaws.com"
ROUTE_PATH = "/events"
TWILIO_SOURCE_IP = "35.90.102.130"  # inside Twilio's documented 35.90.102.128/25
TWILIO_USER_AGENT = "Twilio-Event-Streams/1.0"

# Deliveries reach the sink a moment after the event's `time`; used when nothing in the body has a time.
KINESIS_ARRIVAL_DELAY = timedelta(milliseconds=250)
WEBHOOK_DELIVERY_DELAY = timedelta(milliseconds=1250)
FALLBACK_TIME = datetime(2025, 6, 16, 17, 10, tzinfo=UTC)

TYPE_PREFIXES = ("com.twilio.comms-api.", "com.twilio.messaging.compliance.", "com.twilio.eventstreams.",
                 "com.twilio.")



def load_samples(path: Path = SAMPLES) -> list[dict]:
    """THE sample CloudEvents (data as objects), in their natural arrival order."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def event_name(event_type: str) -> str:
    """File name stem for an event type: `com.twilio.comms-api.message.queued` → `message-queued`."""
    for prefix in TYPE_PREFIXES:
        if event_type.startswith(prefix):
            event_type = event_type[len(prefix):]
            break
    return event_type.replace(".", "-")


def sample_names(samples: list[dict]) -> list[str]:
    """One unique name per sample: the type's name, then `-2`, `-3`… for further samples of a type."""
    seen: Counter[str] = Counter()
    names = []
    for sample in samples:
        name = event_name(sample["type"])
        seen[name] += 1
        names.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return names


# ---------------------------------------------------------------------------------------- Kinesis

def kinesis_payload(cloudevent: dict, data_as_string: bool = True) -> bytes:
    """The record bytes Twilio's Kinesis sink writes: the CloudEvent, its `data` JSON-encoded as a string."""
    event = dict(cloudevent)
    if data_as_string and "data" in event and not isinstance(event["data"], str):
        event["data"] = _compact(event["data"])
    return _compact(event).encode("utf-8")


def kinesis_record(cloudevent: dict, sequence_number: int | str, data_as_string: bool = True) -> dict:
    """One record of a Lambda Kinesis event carrying `cloudevent`."""
    arrival = (_parse_time(cloudevent.get("time")) or FALLBACK_TIME) + KINESIS_ARRIVAL_DELAY
    stored = {
        # Twilio's partition key is not documented; the event id spreads records evenly.
        "PartitionKey": str(cloudevent.get("id") or "twilio-event"),
        "SequenceNumber": str(sequence_number),
        "Data": kinesis_payload(cloudevent, data_as_string),
        "ApproximateArrivalTimestamp": arrival,
    }
    return lambda_record(stored, STREAM_ARN, SHARD_ID, invokeIdentityArn=CONSUMER_ROLE_ARN, awsRegion=REGION)


def kinesis_event(cloudevents: list[dict], first_sequence: int = FIRST_SEQUENCE_NUMBER) -> dict:
    """A Lambda Kinesis event with one record per CloudEvent; sequence numbers first_sequence, +1, +2…"""
    return {"Records": [kinesis_record(event, first_sequence + index) for index, event in enumerate(cloudevents)]}


# ---------------------------------------------------------------------------------------- webhook

def sign(url: str, token: str = LOCAL_TEST_AUTH_TOKEN) -> str:
    """X-Twilio-Signature for a JSON delivery: HMAC-SHA1 over the full URL (bodySHA256 included), no params."""
    return RequestValidator(token).compute_signature(url, {})


def body_sha256(body: str | bytes) -> str:
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return hashlib.sha256(raw).hexdigest()


def webhook_body(cloudevents: list[dict]) -> str:
    """A delivery body as Twilio's webhook sink sends it: a compact JSON array of CloudEvents."""
    return _compact(cloudevents)


def webhook_event(body: str | bytes, token: str = LOCAL_TEST_AUTH_TOKEN, domain: str = DOMAIN,
                  path: str = ROUTE_PATH, extra_query: str = "") -> dict:
    """An API Gateway HTTP API (payload 2.0) event for a Twilio webhook delivery of `body`, signed with `token`.

    Twilio appends `bodySHA256=<hex>` to the sink URL's query (after `extra_query`, if the sink URL
    has one) and signs `https://<domain><path>?<query>`. Bytes that are not UTF-8 are passed base64-encoded,
    as API Gateway does for binary bodies.
    """
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    query = "&".join(part for part in (extra_query.lstrip("?"), f"bodySHA256={body_sha256(raw)}") if part)
    url = f"https://{domain}{path}?{query}"
    try:
        text, is_base64 = raw.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_base64 = base64.b64encode(raw).decode("ascii"), True

    delivered = (_latest_time(raw) or FALLBACK_TIME) + WEBHOOK_DELIVERY_DELAY
    digest = hashlib.sha256(raw + url.encode()).digest()
    route_key = f"POST {path}"
    headers = {
        "accept": "*/*",
        "content-length": str(len(raw)),
        "content-type": "application/json",
        "host": domain,
        "user-agent": TWILIO_USER_AGENT,
        "x-amzn-trace-id": f"Root=1-{int(delivered.timestamp()):08x}-{digest[:12].hex()}",
        "x-forwarded-for": TWILIO_SOURCE_IP,
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
        "x-twilio-signature": sign(url, token),
    }
    return {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "queryStringParameters": _query_parameters(query),
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": domain.split(".", 1)[0],
            "domainName": domain,
            "domainPrefix": domain.split(".", 1)[0],
            "http": {
                "method": "POST",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": TWILIO_SOURCE_IP,
                "userAgent": TWILIO_USER_AGENT,
            },
            "requestId": base64.b64encode(digest[12:23]).decode("ascii"),
            "routeKey": route_key,
            "stage": "$default",
            "time": delivered.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(delivered.timestamp() * 1000),
        },
        "body": text,
        "isBase64Encoded": is_base64,
    }


# ---------------------------------------------------------------------------------------- helpers

def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else None


def _latest_time(raw: bytes) -> datetime | None:
    """The latest event `time` in a delivery body, if it is JSON holding any."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    events = body if isinstance(body, list) else [body]
    times = [t for t in (_parse_time(e.get("time")) for e in events if isinstance(e, dict)) if t]
    return max(times, default=None)


def _query_parameters(query: str) -> dict[str, str]:
    """API Gateway's decoded view of the query: repeated names joined with commas."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        params[name] = f"{params[name]},{value}" if name in params else value
    return params
