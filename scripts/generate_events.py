"""Generate the sample Lambda events under events/ from THE sample payloads.

    python -m scripts.generate_events           # (re)write events/kinesis/*.json and events/webhook/*.json
    python -m scripts.generate_events --check   # exit 1, listing what differs, instead of writing

Everything comes from `events/samples/cloudevents.json`, deterministically: no randomness, no clock.
Per sample, `events/kinesis/<name>.json` is a Lambda Kinesis event holding the CloudEvent as Twilio's
Kinesis sink writes it (`data` as a JSON-encoded string), and `events/webhook/<name>.json` is an API
Gateway HTTP API (payload 2.0) event holding a signed Twilio webhook delivery (a JSON array of
CloudEvents). `all.json` in each directory holds every sample, in the samples' order.

Webhook events are signed with LOCAL_TEST_AUTH_TOKEN for the URL Twilio would call:
https://<domain><path>?bodySHA256=<hex sha256 of the body>. Tests and scripts import the builders
below rather than re-implementing them.
"""

import argparse
import base64
import hashlib
import json
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
SAMPLES = EVENTS / "samples" / "cloudevents.json"
KINESIS_DIR = EVENTS / "kinesis"
WEBHOOK_DIR = EVENTS / "webhook"

# The auth token the local/test webhook events are signed with (documented in events/README.md).
LOCAL_TEST_AUTH_TOKEN = "twilio-sink-local-test-token"
# The Twilio account of every sample event: the one account the local stack accepts (TwilioAccountSids).
SAMPLE_ACCOUNT_SID = "AC7052102cd33665b8046063f51b60605c"

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


# ---------------------------------------------------------------------------------------- samples

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
    sequence = str(sequence_number)
    arrival = _parse_time(cloudevent.get("time")) or FALLBACK_TIME
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            # Twilio's partition key is not documented; the event id spreads records evenly.
            "partitionKey": str(cloudevent.get("id") or "twilio-event"),
            "sequenceNumber": sequence,
            "data": base64.b64encode(kinesis_payload(cloudevent, data_as_string)).decode("ascii"),
            "approximateArrivalTimestamp": round((arrival + KINESIS_ARRIVAL_DELAY).timestamp(), 3),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{SHARD_ID}:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": CONSUMER_ROLE_ARN,
        "awsRegion": REGION,
        "eventSourceARN": STREAM_ARN,
    }


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


# ---------------------------------------------------------------------------------------- files

def generated_files(samples: list[dict] | None = None) -> dict[Path, str]:
    """Every file this script owns, with the exact text it should hold."""
    samples = load_samples() if samples is None else samples
    files: dict[Path, str] = {}
    for index, (name, sample) in enumerate(zip(sample_names(samples), samples)):
        files[KINESIS_DIR / f"{name}.json"] = _pretty(kinesis_event([sample], FIRST_SEQUENCE_NUMBER + index))
        files[WEBHOOK_DIR / f"{name}.json"] = _pretty(webhook_event(webhook_body([sample])))
    files[KINESIS_DIR / "all.json"] = _pretty(kinesis_event(samples))
    files[WEBHOOK_DIR / "all.json"] = _pretty(webhook_event(webhook_body(samples)))
    return files


def stale_files(expected: dict[Path, str]) -> list[Path]:
    """JSON files in the generated directories that no sample produces any more."""
    present = [path for folder in (KINESIS_DIR, WEBHOOK_DIR) if folder.is_dir() for path in folder.glob("*.json")]
    return sorted(path for path in present if path not in expected)


def check(samples: list[dict] | None = None) -> list[str]:
    """What differs between events/ and what the samples generate (empty when up to date)."""
    expected = generated_files(samples)
    problems = []
    for path, text in expected.items():
        if not path.exists():
            problems.append(f"missing: {_rel(path)}")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"differs: {_rel(path)}")
    problems += [f"stale: {_rel(path)}" for path in stale_files(expected)]
    return problems


def write(samples: list[dict] | None = None) -> list[Path]:
    """Write every generated file, remove stale ones; returns the files whose content changed."""
    expected = generated_files(samples)
    changed = []
    for path, text in expected.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    for path in stale_files(expected):
        path.unlink()
        changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 listing files that differ, write nothing")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        for problem in problems:
            print(problem)
        if problems:
            print("events/ is out of date: run `python -m scripts.generate_events` (or `make events`)")
            return 1
        print("events/ is up to date")
        return 0
    changed = write()
    print(f"{len(changed)} file(s) written or removed under events/" if changed else "events/ already up to date")
    for path in changed:
        print(f"  {_rel(path)}")
    return 0


# ---------------------------------------------------------------------------------------- helpers

def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


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


if __name__ == "__main__":
    sys.exit(main())
