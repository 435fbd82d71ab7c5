"""`make run`: replay events/ through both real functions against an in-process AWS stand-in.

No AWS account is needed: moto plays DynamoDB, SNS, SQS and Secrets Manager, with the status
table created from template.yaml. Prints the status table and the notifications subscribers got.
"""

import json
import os
import sys
from pathlib import Path

from moto import mock_aws

from scripts.generate_events import LOCAL_TEST_AUTH_TOKEN
from scripts.local_aws import FAKE_CREDENTIALS, ROOT, LambdaContext, Stack, load_function

EVENTS = ROOT / "events"


def main() -> int:
    os.environ.update(FAKE_CREDENTIALS | {"POWERTOOLS_TRACE_DISABLED": "1", "POWERTOOLS_LOG_LEVEL": "ERROR",
                                          "POWERTOOLS_METRICS_NAMESPACE": "TwilioEventSink",
                                          "POWERTOOLS_METRICS_DISABLED": "1"})
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with mock_aws():
        stack = Stack(LOCAL_TEST_AUTH_TOKEN)
        os.environ.update(stack.env)
        consumer, webhook = load_function("stream_consumer"), load_function("webhook")
        context = LambdaContext()

        kinesis_event = _load(EVENTS / "kinesis" / "all.json")
        print(f"→ stream consumer: {len(kinesis_event['Records'])} Kinesis records from events/kinesis/all.json")
        response = consumer.lambda_handler(kinesis_event, context)
        print(f"  answer: {json.dumps(response)}")

        print("→ webhook: the same events again, one signed delivery per file in events/webhook/")
        for path in sorted((EVENTS / "webhook").glob("*.json")):
            if path.name == "all.json":
                continue
            answer = webhook.lambda_handler(_load(path), context)
            print(f"  {path.name:<48} {answer['statusCode']} {answer['body']}")

        _print_states(stack.states())
        _print_notifications(stack.notifications())
        letters = stack.dead_letters()
        print(f"\nDead letters: {len(letters)}")
        for letter in letters:
            print(f"  {letter['reason']}: {letter['detail']}")
    return 0


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _print_states(states: dict[str, dict]) -> None:
    print(f"\nStatus table ({len(states)} entities):")
    print(f"  {'entity':<13} {'id':<36} {'status':<24} {'event time':<28} event type")
    for state in sorted(states.values(), key=lambda s: (s["entity"], s["id"])):
        print(f"  {state['entity']:<13} {state['id']:<36} {state['status']:<24} {state['event_time']:<28} "
              f"{state['event_type']}")


def _print_notifications(notes: list[dict]) -> None:
    print(f"\nNotifications published to SNS ({len(notes)}):")
    for note in notes:
        before = note["previous_status"] or "—"
        print(f"  {note['entity']:<13} {note['id']:<36} {before} → {note['status']}")


if __name__ == "__main__":
    sys.exit(main())
