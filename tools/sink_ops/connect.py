"""Connect Twilio Event Streams to the deployed stack: create a sink, hand-shake it, subscribe it.

    twilio-sink connect webhook --stack twilio-event-sink
    twilio-sink connect kinesis --stack twilio-event-sink [--types 'com.twilio.comms-api.*']
    twilio-sink connect webhook --stack twilio-event-sink --families calls verifications
    twilio-sink connect --list-types       # every subscribable type: its family and schema version

`webhook` creates a webhook sink for the stack's WebhookUrl (active at once). `kinesis` creates a
Kinesis sink for StreamArn / TwilioRoleArn and the external id you deployed with, asks Twilio for a test event, waits for
its test_id to reach the status table (pk `sink_test#<test_id>`), and validates the sink with it.
Then the sink is subscribed to the event types the registry knows (or those of the --families named,
or matching --types: shell patterns, or type prefixes), each with the latest schema version its family
declares. Values come from the stack's outputs (CloudFormation DescribeStacks) or from
the explicit options. Twilio credentials: TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN, or with
TWILIO_API_KEY and TWILIO_API_SECRET.
"""

import argparse
import fnmatch
import os
import sys
import time

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from sink_ops import locate
from twilio_sink.families.handshake import SinkTests
from twilio_sink.registry import FAMILIES
from twilio_sink.state import EntityState
from twilio_sink.store import StatusStore

TEST_EVENT_TYPE = "com.twilio.eventstreams.test-event"  # sent by Twilio on a sink test, not subscribable
WILDCARDS = set("*?[")


class SetupError(Exception):
    """A problem the operator can fix; printed without a traceback."""


def subscribable() -> dict[str, tuple[str, int]]:
    """type -> (family name, the latest schema version its family declares), for every subscribable type."""
    return {event_type: (family.name, declared.latest)
            for family in FAMILIES if family.subscribable for event_type, declared in sorted(family.types.items())}


def subscription_types(patterns: list[str] | None, families: list[str] | None = None) -> list[dict]:
    """[{type, schema_version}] for the subscribable types of the named families matching any pattern.

    No families: all of them; no patterns: every type. A pattern without a wildcard is a type prefix.
    """
    known = subscribable()
    names = sorted({name for name, _ in known.values()})
    unknown = sorted(set(families or ()) - set(names))
    if unknown:
        raise SetupError(f"no family named {', '.join(unknown)} (families: {', '.join(names)})")
    chosen = [t for t, (name, _) in known.items() if not families or name in families]
    if patterns:
        globs = [p if WILDCARDS & set(p) else p + "*" for p in patterns]
        unmatched = [p for p, glob in zip(patterns, globs) if not fnmatch.filter(chosen, glob)]
        if unmatched:
            raise SetupError(f"no known event type matches {', '.join(unmatched)} "
                             f"(known: {len(known)} types, see `--list-types`)")
        chosen = [t for t in chosen if any(fnmatch.fnmatchcase(t, glob) for glob in globs)]
    return [{"type": t, "schema_version": known[t][1]} for t in chosen]


def twilio_client(environ=os.environ) -> Client:
    account = environ.get("TWILIO_ACCOUNT_SID")
    if not account:
        raise SetupError("set TWILIO_ACCOUNT_SID, and TWILIO_AUTH_TOKEN or TWILIO_API_KEY + TWILIO_API_SECRET")
    if environ.get("TWILIO_API_KEY") and environ.get("TWILIO_API_SECRET"):
        return Client(environ["TWILIO_API_KEY"], environ["TWILIO_API_SECRET"], account_sid=account)
    if environ.get("TWILIO_AUTH_TOKEN"):
        return Client(account, environ["TWILIO_AUTH_TOKEN"])
    raise SetupError("set TWILIO_AUTH_TOKEN, or TWILIO_API_KEY + TWILIO_API_SECRET, for the account")




class Setup:
    def __init__(self, client: Client, say=print, poll_seconds: float = 2.0):
        self.events = client.events.v1
        self.say = say
        self.poll_seconds = poll_seconds

    def webhook_sink(self, url: str, description: str) -> str:
        self.say(f"→ creating a webhook sink for {url}")
        sink = self.events.sinks.create(description=description, sink_type="webhook", sink_configuration={
            "destination": url, "method": "POST", "batch_events": True})
        self.say(f"  sink {sink.sid}: {sink.status}")
        return sink.sid

    def kinesis_sink(self, stream_arn: str, role_arn: str, external_id: str, description: str) -> str:
        self.say(f"→ creating a Kinesis sink for {stream_arn}")
        sink = self.events.sinks.create(description=description, sink_type="kinesis", sink_configuration={
            "arn": stream_arn, "role_arn": role_arn, "external_id": external_id})
        self.say(f"  sink {sink.sid}: {sink.status}")
        return sink.sid

    def handshake(self, sink_sid: str, table: StatusStore, timeout: float) -> str:
        """Test the sink, wait for the test event in the table, validate the sink with its test_id."""
        before = set(sink_tests(table))
        self.say(f"→ asking Twilio to write a test event to the stream (sink {sink_sid})")
        self.events.sinks(sink_sid).sink_test.create()
        self.say(f"→ waiting up to {timeout:.0f}s for the test event to reach {table.table_name}")
        started = time.monotonic()
        while True:
            fresh = [state for pk, state in sink_tests(table).items() if pk not in before]
            if fresh:
                break
            waited = time.monotonic() - started
            if waited >= timeout:
                raise SetupError(
                    f"no test event reached {table.table_name} within {timeout:.0f}s: check that the stack's stream "
                    "consumer runs (its logs), that Twilio can assume TwilioRoleArn with the external id, "
                    "then run again with --sink-sid " + sink_sid)
            self.say(f"  … {waited:.0f}s")
            time.sleep(self.poll_seconds)
        # Newest first: another test running at the same time is the only way to see more than one.
        for state in sorted(fresh, key=lambda state: state.updated_at, reverse=True):
            test_id = state.winner.id
            self.say(f"→ validating sink {sink_sid} with test_id {test_id}")
            try:
                result = self.events.sinks(sink_sid).sink_validate.create(test_id=test_id)
            except TwilioRestException as error:
                self.say(f"  Twilio did not accept {test_id}: {error.msg}")
                continue
            self.say(f"  {result.result}")
            return test_id
        raise SetupError(f"Twilio accepted none of the new test ids {[state.winner.id for state in fresh]} for sink {sink_sid}")

    def subscribe(self, sink_sid: str, types: list[dict], description: str) -> str:
        self.say(f"→ subscribing sink {sink_sid} to {len(types)} event types")
        for entry in types:
            self.say(f"  {entry['type']} (schema version {entry['schema_version']})")
        subscription = self.events.subscriptions.create(description=description, sink_sid=sink_sid, types=types)
        self.say(f"  subscription {subscription.sid}")
        return subscription.sid


def sink_tests(table: StatusStore) -> dict[str, EntityState]:
    """The sink tests' states by pk (a filtered Scan: the hand-shake runs once per sink)."""
    return {state.pk: state for state in table.states(entity=SinkTests.entity)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twilio-sink connect", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--list-types", action="store_true", help="print the subscribable types and exit")
    kinds = parser.add_subparsers(dest="kind")
    for kind in ("webhook", "kinesis"):
        sub = kinds.add_parser(kind, help=f"create and subscribe a {kind} sink")
        sub.add_argument("--stack", help="the deployed stack's name: values are read from its outputs")
        sub.add_argument("--region", help="AWS region of the stack (default: your AWS configuration)")
        sub.add_argument("--types", nargs="+", metavar="PATTERN",
                         help="subscribe only to these types (shell patterns, e.g. 'com.twilio.comms-api.*', "
                              "or type prefixes, e.g. com.twilio.voice.)")
        sub.add_argument("--families", nargs="+", metavar="FAMILY",
                         help="subscribe only to these families' types (see --list-types)")
        sub.add_argument("--description", default="AWS sink (twilio-event-sink)", help="sink and subscription description")
        sub.add_argument("--sink-sid", help="use this existing sink instead of creating one")
        if kind == "webhook":
            sub.add_argument("--webhook-url", help="overrides the WebhookUrl output")
        else:
            sub.add_argument("--stream-arn", help="overrides the StreamArn output")
            sub.add_argument("--role-arn", help="overrides the TwilioRoleArn output")
            sub.add_argument("--external-id", default=os.environ.get("TWILIO_EXTERNAL_ID"),
                             help="the TwilioExternalId the stack was deployed with (default: $TWILIO_EXTERNAL_ID); "
                                  "it is the role's secret, so no stack output repeats it")
            sub.add_argument("--table", help="overrides the StatusTableName output")
            sub.add_argument("--wait", type=float, default=180, help="seconds to wait for the test event (default 180)")
    return parser


def run(args, client_factory=twilio_client, say=print) -> int:
    types = subscription_types(args.types, args.families)
    outputs = locate.outputs(args.stack, args.region) if args.stack else {}

    def value(option: str, output: str) -> str:
        found = getattr(args, option) or outputs.get(output)
        if not found:
            raise SetupError(f"no {output}: give --stack or --{option.replace('_', '-')}")
        return found

    setup = Setup(client_factory(), say=say)
    if args.kind == "webhook":
        sink_sid = args.sink_sid or setup.webhook_sink(value("webhook_url", "WebhookUrl"), args.description)
    else:
        table_name = value("table", "StatusTableName")
        sink_sid = args.sink_sid or setup.kinesis_sink(value("stream_arn", "StreamArn"), value("role_arn", "TwilioRoleArn"),
                                                       external_id(args), args.description)
        table = StatusStore(table_name, boto3.client("dynamodb", region_name=args.region))
        setup.handshake(sink_sid, table, args.wait)
    setup.subscribe(sink_sid, types, args.description)
    say(f"done: sink {sink_sid} is subscribed; `twilio-sink status --stack …` shows what arrives")
    return 0


def external_id(args) -> str:
    if not args.external_id:
        raise SetupError("no external id: give --external-id (or TWILIO_EXTERNAL_ID), the TwilioExternalId "
                         "the stack was deployed with")
    return args.external_id


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_types:
        for event_type, (family, version) in subscribable().items():
            print(f"{family:<16} {event_type}  (schema version {version})")
        return 0
    if not args.kind:
        parser.error("choose webhook or kinesis (or --list-types)")
    try:
        return run(args)
    except (SetupError, locate.StackNotFound) as error:
        print(f"error: {error}", file=sys.stderr)
    except TwilioRestException as error:
        print(f"error: Twilio answered {error.status} to {error.method} {error.uri}: {error.msg}", file=sys.stderr)
    except TwilioException as error:
        print(f"error: {error}", file=sys.stderr)
    except (ClientError, BotoCoreError) as error:
        print(f"error: AWS: {error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
