"""Send CloudEvents to the running local stack (`twilio-sink serve`) through either door, as Twilio would.

    twilio-sink send webhook FILE [--curl] [--token T]   # a signed POST of the events
    twilio-sink send kinesis FILE                        # PutRecords, one event per record

FILE holds a CloudEvent, a JSON array of them (e.g. events/samples/cloudevents.json), or an API Gateway
event from events/webhook/ (its body is sent). The webhook delivery is signed with the `twilio`
package for the URL the server says Twilio calls (its PUBLIC_BASE_URL), exactly as Twilio signs it.
"""

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from shlex import quote

import boto3

from sink_dev.samples import body_sha256, kinesis_payload, sign, webhook_body
from sink_local.serve import STATE_FILE


class NotServing(Exception):
    pass


def read_state(path: Path = STATE_FILE) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise NotServing(f"no local stack found ({path} is missing): start one with `twilio-sink serve`") from None


def load_events(path: Path) -> list[dict]:
    try:
        value = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not JSON ({error})") from None
    if isinstance(value, dict) and value.get("version") == "2.0" and "body" in value:
        value = json.loads(value["body"])
    events = value if isinstance(value, list) else [value]
    if not all(isinstance(event, dict) for event in events):
        raise ValueError(f"{path}: expected a CloudEvent or a JSON array of CloudEvents")
    return events


def signed_delivery(events: list[dict], public_url: str, token: str) -> tuple[str, str, str]:
    """(body, the URL Twilio signs, X-Twilio-Signature) for a webhook delivery of `events`."""
    body = webhook_body(events)
    url = f"{public_url}?bodySHA256={body_sha256(body)}"
    return body, url, sign(url, token)


def post(webhook_url: str, signed_url: str, body: str, signature: str) -> tuple[int, str]:
    target = webhook_url + "?" + signed_url.partition("?")[2]
    request = urllib.request.Request(target, data=body.encode("utf-8"), method="POST", headers={
        "Content-Type": "application/json", "X-Twilio-Signature": signature, "User-Agent": "Twilio-Event-Streams/1.0"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the local server
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def put_records(state: dict, events: list[dict]) -> list[dict]:
    """PutRecords of `events` on the local stream; returns [{ShardId, SequenceNumber}] in order."""
    kinesis = boto3.client("kinesis", region_name=state["region"], endpoint_url=state["endpoint_url"],
                           aws_access_key_id="testing", aws_secret_access_key="testing")
    results = []
    for start in range(0, len(events), 500):
        chunk = events[start:start + 500]
        response = kinesis.put_records(StreamName=state["stream_name"], Records=[
            {"Data": kinesis_payload(event), "PartitionKey": str(event.get("id") or "twilio-event")} for event in chunk])
        results.extend(response["Records"])
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="twilio-sink send", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--state-file", type=Path, default=STATE_FILE, help="written by `twilio-sink serve`")
    doors = parser.add_subparsers(dest="door", required=True)
    webhook = doors.add_parser("webhook", help="POST the events as one signed webhook delivery")
    webhook.add_argument("file", type=Path)
    webhook.add_argument("--token", help="auth token to sign with (default: the local test token)")
    webhook.add_argument("--curl", action="store_true", help="print the curl command instead of posting")
    kinesis = doors.add_parser("kinesis", help="put the events on the local stream, one record each")
    kinesis.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    try:
        state = read_state(args.state_file)
        events = load_events(args.file)
    except (NotServing, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    if args.door == "kinesis":
        print(f"→ PutRecords: {len(events)} record(s) on {state['stream_name']}")
        for event, record in zip(events, put_records(state, events)):
            print(f"  {event.get('type', '?'):<70} {record['ShardId']} {record['SequenceNumber']}")
        return 0

    body, url, signature = signed_delivery(events, state["public_url"], args.token or state["auth_token"])
    if args.curl:
        body_file = args.state_file.parent / "delivery.json"
        body_file.write_text(body)
        target = state["webhook_url"] + "?" + url.partition("?")[2]
        print(f"curl -sS -X POST {quote(target)} -H 'Content-Type: application/json' "
              f"-H {quote('X-Twilio-Signature: ' + signature)} --data-binary @{quote(str(body_file))}")
        return 0
    print(f"→ POST {len(events)} event(s), signed for {url}")
    try:
        status, answer = post(state["webhook_url"], url, body, signature)
    except OSError as error:
        print(f"error: the local webhook did not answer ({error}): is `twilio-sink serve` still running?", file=sys.stderr)
        return 1
    print(f"  {status} {answer}")
    return 0 if status < 300 else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # output piped into `head`
        sys.exit(0)
