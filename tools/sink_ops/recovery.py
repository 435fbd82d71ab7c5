"""What `redrive` and `replay` share: the stack's resources, the core pipeline, and draining a queue.

Both commands run the core in-process (the same code the functions run) against the deployed
table, topic and queues, found from the CloudFormation stack's outputs or given one by one.
"""

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tqdm import tqdm

from sink_ops import locate
from twilio_sink import aws
from twilio_sink.accounts import AccountRule
from twilio_sink.dead_letters import DeadLetterQueue
from twilio_sink.notify import Notifier
from twilio_sink.observability import logger, metrics
from twilio_sink.pipeline import Outcome, Pipeline
from twilio_sink.received import Received
from twilio_sink.sids import parse_account_sids
from twilio_sink.store import StatusStore

# Stack output -> option name (and attribute of `Resources`).
OUTPUTS = {
    "StatusTableName": "table_name",
    "NotificationTopicArn": "topic_arn",
    "DeadLetterQueueUrl": "dead_letter_queue_url",
    "StreamFailureQueueUrl": "stream_failure_queue_url",
    # The functions' allow-list: what they would dead-letter as foreign_account, so do the commands.
    "TwilioAccountSids": "twilio_account_sids",
    # accept (the default when not given) or refuse: what the consumer does with a record naming no account.
    "StreamEventsWithoutAccount": "stream_events_without_account",
    # The functions' retention: history the commands write expires like theirs (contract 2).
    "HistoryRetentionDays": "history_retention_days",
}


class UsageError(Exception):
    """The command cannot start: a resource is unknown or the stack cannot be read."""


@dataclass(frozen=True)
class Resources:
    table_name: str
    topic_arn: str
    dead_letter_queue_url: str
    stream_failure_queue_url: str
    twilio_account_sids: str  # comma-separated
    stream_events_without_account: str = ""
    history_retention_days: str = ""  # whole days; needed by every command that writes

    @property
    def accounts(self) -> tuple[str, ...]:
        return parse_account_sids(self.twilio_account_sids)

    def stream_accounts(self) -> AccountRule:
        """What the stream consumer admits, so a redriven or replayed record is admitted alike."""
        return AccountRule.stream(self.accounts, self.stream_events_without_account or "accept")

    def webhook_accounts(self, signed_by: str | None) -> AccountRule:
        """What the webhook admitted from a delivery signed by `signed_by`'s token (None: the main token)."""
        return AccountRule.webhook(self.accounts, signed_by)

    @property
    def retention_days(self) -> int:
        return int(self.history_retention_days)


def add_resource_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("where (a stack name, or each resource; an option overrides the stack's output)")
    group.add_argument("--stack", help="CloudFormation stack name: its outputs name every resource below")
    for output, attribute in OUTPUTS.items():
        group.add_argument(f"--{attribute.replace('_', '-')}", dest=attribute, help=f"the stack's {output}")


def add_queue_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="read and decode only: write, publish and delete nothing")
    parser.add_argument("--max-messages", type=int, default=0, help="stop after this many queue messages (0: all)")
    parser.add_argument("--visibility-seconds", type=int, default=300,
                        help="how long a message being handled stays hidden from other readers (default 300)")
    parser.add_argument("--wait-seconds", type=int, default=1, help="SQS long-poll wait per receive (default 1)")


def resolve(args: argparse.Namespace, needed: tuple[str, ...]) -> Resources:
    values = {attribute: getattr(args, attribute) for attribute in OUTPUTS.values()}
    if args.stack:
        try:
            outputs = locate.outputs(args.stack)
        except locate.StackNotFound as error:
            raise UsageError(str(error)) from None
        for output, attribute in OUTPUTS.items():
            values[attribute] = values[attribute] or outputs.get(output)
    # Every command decodes events, and decoding checks their account.
    needed = (*needed, "twilio_account_sids")
    missing = [f"--{name.replace('_', '-')}" for name in needed if not values[name]]
    if missing:
        raise UsageError(f"unknown resource(s): give --stack or {', '.join(missing)}")
    try:
        parse_account_sids(values["twilio_account_sids"])
    except ValueError as error:
        raise UsageError(f"--twilio-account-sids: {error}") from None
    retention = values["history_retention_days"]
    if retention and not (retention.isdigit() and retention.isascii()):
        raise UsageError(f"--history-retention-days: a whole number of days (0: forever), not {retention!r}")
    return Resources(**{name: value or "" for name, value in values.items()})


@dataclass(frozen=True)
class Command[Summary]:
    """What differs between `redrive` and `replay`; `main` is the rest, the same for both."""

    name: str  # redrive | replay
    doc: str  # the module's docstring: its second paragraph is the description
    title: str  # what it does, for its first line: "Redriving stream failures"
    noun: str  # what the queue holds: message | letter
    done: str  # what became of one that succeeded: redriven | replayed
    queue: str  # the Resources attribute of the queue drained
    writes: tuple[str, ...]  # the further resources needed when not a dry run
    drain: Callable[[Resources, argparse.Namespace], Summary]
    report: Callable[[Summary, bool], tuple[str, bool]]  # (the closing line, whether nothing was kept)

    def main(self, argv: list[str] | None = None) -> int:
        parser = argparse.ArgumentParser(
            prog=f"twilio-sink {self.name}", description=self.doc.split("\n\n")[1].replace("\n", " "),
            epilog=f"Exit status: 0 when every {self.noun} was {self.done} (or would be, in a dry run), 1 when "
                   "some were kept, 2 on a usage error.")
        add_resource_options(parser)
        add_queue_options(parser)
        args = parser.parse_args(argv)
        try:
            resources = resolve(args, (self.queue,) if args.dry_run else (self.queue, *self.writes))
        except UsageError as error:
            print(f"{self.name}: {error}", file=sys.stderr)
            return 2
        mode = "dry run: nothing is written or deleted" if args.dry_run else "reprocessing"
        print(f"{self.title} from {getattr(resources, self.queue)} ({mode})")
        try:
            with quiet_core():
                summary = self.drain(resources, args)
        except aws.AWS_ERRORS as error:
            print(f"{self.name}: stopped by an AWS error, nothing was lost ({self.noun}s not done stay queued): {error}",
                  file=sys.stderr)
            return 1
        line, nothing_kept = self.report(summary, args.dry_run)
        print(line)
        return 0 if nothing_kept else 1


def pipeline(resources: Resources) -> Pipeline:
    """The core pipeline on the stack's resources, writing history with the stack's retention."""
    return Pipeline(
        StatusStore(resources.table_name, aws.client("dynamodb"), resources.retention_days),
        Notifier(resources.topic_arn, aws.client("sns")),
        DeadLetterQueue(resources.dead_letter_queue_url, aws.client("sqs")),
    )


@contextmanager
def quiet_core():
    """A command prints its own progress: the core's per-event warnings would drown it (errors still show)."""
    level = logger.log_level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)


def process(core: Pipeline, received: list[Received]) -> Outcome:
    outcome = core.process(received)
    # Outside Lambda nothing ships EMF to CloudWatch: drop the run's metrics rather than print them.
    metrics.clear_metrics()
    return outcome


def receive_all(queue_url: str, args: argparse.Namespace) -> Iterator[dict]:
    """Every message of the queue once, with a progress bar on a terminal."""
    attributes = aws.client("sqs").get_queue_attributes(QueueUrl=queue_url,
                                                        AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    total = int(attributes["ApproximateNumberOfMessages"])
    if args.max_messages:
        total = min(total, args.max_messages)
    # disable=None: the bar shows on a terminal only, so logs and tests read the report lines alone.
    yield from tqdm(_receive(queue_url, args), total=total, unit="message", file=sys.stderr, disable=None, leave=False)


def _receive(queue_url: str, args: argparse.Namespace) -> Iterator[dict]:
    """Each message once: each stays hidden while handled (or until the visibility ends)."""
    sqs = aws.client("sqs")
    seen: set[str] = set()
    while not args.max_messages or len(seen) < args.max_messages:
        want = 10 if not args.max_messages else min(10, args.max_messages - len(seen))
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=want,
                                       VisibilityTimeout=args.visibility_seconds,
                                       WaitTimeSeconds=args.wait_seconds).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            return
        for message in fresh:
            seen.add(message["MessageId"])
            yield message


def delete(queue_url: str, message: dict) -> None:
    aws.client("sqs").delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def release(queue_url: str, message: dict) -> None:
    """Make a message kept for later visible again at once (a dry run, or a message not yet done)."""
    aws.client("sqs").change_message_visibility(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"],
                                                VisibilityTimeout=0)
