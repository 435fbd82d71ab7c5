"""Fault injection around the real handlers: Lambda's and Twilio's retry rules, crashes, interleavings.

Everything is deterministic: the pipeline runs its parallel steps inline (one thread), every AWS call
the core makes gets a number, and a fault plan or an interleaving names the call it acts on:
- a fault: throttling, a 5xx, a timeout (what boto3 raises after its own retries), or a crash
  (the function dying - exception, out of memory or Lambda timeout) before or after the call took effect;
- a cut-in: another delivery's attempt runs to its end right before or after that call - two
  invocations at once (ParallelizationFactor > 1, or the webhook and the stream together).
"""

import argparse
import base64
import json
import os
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field

import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from moto import mock_aws

from sink_dev.samples import LOCAL_TEST_AUTH_TOKEN, SAMPLE_ACCOUNT_SID, kinesis_payload
from sink_local.stack import REGION, LambdaContext, Stack
from sink_ops import recovery
from sink_ops.records import lambda_record
from tests.support.sinks import post

STREAM_NAME = "twilio-events"

# The calls through which the core changes the world, by client.
FAULTY_CALLS = {
    "dynamodb": ["batch_get_item", "put_item", "update_item", "batch_write_item"],
    "sns": ["publish_batch"],
    "sqs": ["send_message_batch"],
}
FAULT_KINDS = ["throttle", "server_error", "timeout", "crash_before", "crash_after"]
MAX_STREAM_RETRIES = 2  # the template's StreamMaximumRetryAttempts, small so exhaustion happens
MAX_TWILIO_ATTEMPTS = 30  # Twilio retries for 4 hours: far more than any finite fault plan needs
# Attempts that do not overlap are minutes apart (Twilio's backoff; a crashed invocation has reached its
# timeout): longer than any lease, so a claim left by an ended attempt can be taken over by the next.
BETWEEN_ATTEMPTS_SECONDS = 300


class Clock:
    """The core's wall clock (claims' leases), moved on between attempts that do not overlap."""

    def __init__(self):
        import time

        self.now = time.time()

    def time(self) -> float:
        return self.now


CLOCK = Clock()


class Crash(BaseException):
    """The function died at that point; nothing in the code can catch it (BaseException)."""

    def __init__(self, took_effect: bool):
        super().__init__("injected crash " + ("after" if took_effect else "before") + " the call took effect")
        self.took_effect = took_effect


def aws_fault(kind: str, operation: str) -> Exception:
    if kind == "throttle":
        return ClientError({"Error": {"Code": "ThrottlingException", "Message": "injected"},
                            "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)
    if kind == "server_error":
        return ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"},
                            "ResponseMetadata": {"HTTPStatusCode": 500}}, operation)
    return ReadTimeoutError(endpoint_url=f"https://injected/{operation}")


class InlineExecutor:
    """Runs submitted work at once, in the caller's thread: one invocation is one deterministic sequence."""

    def submit(self, fn, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as error:  # noqa: BLE001 - kept for .result(), as a pool would; a Crash escapes
            future.set_exception(error)
        return future

    def map(self, fn, *iterables) -> list:
        # Eager and in order: a Crash stops the invocation at the call it stands for.
        return [fn(*args) for args in zip(*iterables)]


@dataclass
class Faults:
    """Numbers every AWS call of the core; injects faults and cut-ins at chosen numbers."""

    plan: dict[int, str] = field(default_factory=dict)  # call number -> fault kind
    cut_ins: dict[int, tuple[str, object]] = field(default_factory=dict)  # call number -> (before|after, run)
    calls: int = 0
    fired: list[str] = field(default_factory=list)
    active: bool = True
    nested: bool = False
    running: list = field(default_factory=list)  # the deliveries whose attempt is under way, outermost first
    overlaps: list[tuple[object, object]] = field(default_factory=list)  # (host, cut-in) that really ran

    def reset(self, plan: dict[int, str], cut_ins: dict[int, tuple[str, object]]) -> None:
        self.plan, self.cut_ins, self.calls, self.fired, self.active = plan, cut_ins, 0, [], True
        self.overlaps = []

    def attempt(self, delivery) -> None:
        """One attempt of a delivery, known as the host of any cut-in during it."""
        if not self.running:
            CLOCK.now += BETWEEN_ATTEMPTS_SECONDS
        self.running.append(delivery)
        try:
            delivery.attempt()
        finally:
            self.running.pop()

    def install(self, clients: dict[str, object]) -> None:
        for service, operations in FAULTY_CALLS.items():
            for operation in operations:
                self._wrap(clients[service], operation)

    def _wrap(self, client, operation: str) -> None:
        real = getattr(client, operation)

        def call(*args, **kwargs):
            if not self.active:
                return real(*args, **kwargs)
            number = self.calls
            self.calls += 1
            kind = self.plan.get(number)
            self._cut_in(number, "before")
            if kind in ("throttle", "server_error", "timeout"):
                self.fired.append(f"{kind} on {operation}")
                raise aws_fault(kind, operation)
            if kind == "crash_before":
                self.fired.append(f"crash before {operation}")
                raise Crash(took_effect=False)
            result = real(*args, **kwargs)
            if kind == "crash_after":
                self.fired.append(f"crash after {operation}")
                raise Crash(took_effect=True)
            self._cut_in(number, "after")
            return result

        setattr(client, operation, call)

    def _cut_in(self, number: int, when: str) -> None:
        planned = self.cut_ins.get(number)
        if planned is None or planned[0] != when or self.nested:
            return
        del self.cut_ins[number]
        host, guest = self.running[-1], planned[1]
        if guest is host or guest.done:  # Lambda never runs one batch twice at once
            return
        self.overlaps.append((host, guest))
        self.nested = True  # one level deep: a cut-in does not host another
        try:
            self.attempt(guest)
        finally:
            self.nested = False


def record_applied_changes(store, stack) -> list[str]:
    """Event ids of every change a state write made durable (the claims it added), in write order."""
    applied: list[str] = []
    real = store.save_state

    def save_state(pk, write):
        # Read with the stack's own client: not one of the core's numbered calls.
        item = stack.ddb.get_item(TableName=stack.table_name, Key={"pk": {"S": pk}, "sk": {"S": "state"}},
                                  ConsistentRead=True).get("Item")
        before = set(item["claims"]["M"]) if item else set()
        added = [event_id for event_id in write.claims if event_id not in before]
        try:
            real(pk, write)
        except Crash as crash:
            if crash.took_effect:
                applied.extend(added)
            raise
        applied.extend(added)

    store.save_state = save_state
    return applied


# ---- the stream -------------------------------------------------------------------------------

def record_bytes(item: dict | bytes) -> bytes:
    return item if isinstance(item, bytes) else kinesis_payload(item)


def put_on_stream(kinesis, stream_name: str, items: list[dict | bytes]) -> list[dict]:
    """Writes the items as Twilio does and returns them as Lambda hands them to the consumer."""
    response = kinesis.put_records(StreamName=stream_name, Records=[
        {"Data": record_bytes(item), "PartitionKey": item.get("id", "p") if isinstance(item, dict) else "poison"}
        for item in items])
    description = kinesis.describe_stream(StreamName=stream_name)["StreamDescription"]
    shard = response["Records"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=stream_name, ShardId=shard, ShardIteratorType="AT_SEQUENCE_NUMBER",
                                          StartingSequenceNumber=response["Records"][0]["SequenceNumber"])
    records = kinesis.get_records(ShardIterator=iterator["ShardIterator"], Limit=len(items))["Records"]
    return [lambda_record(r, description["StreamARN"], shard) for r in records]


def on_failure_message(batch: list[dict]) -> str:
    """Lambda's OnFailure invocation record for a Kinesis batch: metadata only, never the records."""
    first, last = batch[0], batch[-1]
    return json.dumps({
        "requestContext": {"requestId": "c9b8fa9f-5a7f-4b0a-af9c-0c604cde93a5",
                           "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:consumer",
                           "condition": "RetryAttemptsExhausted", "approximateInvokeCount": MAX_STREAM_RETRIES + 1},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2026-01-01T12:00:06.021Z",
        "KinesisBatchInfo": {
            "shardId": first["eventID"].split(":", 1)[0],
            "startSequenceNumber": first["kinesis"]["sequenceNumber"],
            "endSequenceNumber": last["kinesis"]["sequenceNumber"],
            "approximateArrivalOfFirstRecord": "2026-01-01T12:00:04.835Z",
            "approximateArrivalOfLastRecord": "2026-01-01T12:00:05.580Z",
            "batchSize": len(batch),
            "streamArn": first["eventSourceARN"],
        },
    })


class StreamDelivery:
    """Lambda's rules for a Kinesis batch with ReportBatchItemFailures and BisectBatchOnFunctionError:
    after reported failures, retry from the lowest failed record; after a function error (a crash),
    retry the batch split in halves; after MAX_STREAM_RETRIES retries, send the batch's metadata to
    the OnFailure destination and move on."""

    def __init__(self, consumer, context, records: list[dict], send_on_failure):
        self.consumer, self.context, self.send_on_failure = consumer, context, send_on_failure
        self.queue: list[tuple[list[dict], int]] = [(records, 0)]
        self.exhausted = 0

    @property
    def done(self) -> bool:
        return not self.queue

    def attempt(self) -> None:
        if self.done:
            return
        batch, retries = self.queue.pop(0)
        # A cut-in runs one invocation inside another in this process: the function itself must keep
        # their batches apart (its processor is made per invocation), as separate containers would.
        try:
            response = self.consumer.lambda_handler({"Records": batch}, self.context)
        except Crash:
            halves = [batch[: len(batch) // 2], batch[len(batch) // 2:]] if len(batch) > 1 else [batch]
            self._retry([(half, retries + 1) for half in halves])
            return
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        if failed:
            sequences = [r["kinesis"]["sequenceNumber"] for r in batch]
            lowest = min(sequences.index(s) for s in failed)
            self._retry([(batch[lowest:], retries + 1)])

    def _retry(self, batches: list[tuple[list[dict], int]]) -> None:
        for batch, retries in reversed(batches):
            if retries > MAX_STREAM_RETRIES:
                self.exhausted += 1
                self.send_on_failure(on_failure_message(batch))
            else:
                self.queue.insert(0, (batch, retries))


class WebhookDelivery:
    """Twilio's rules: 5xx, 429, a timeout or no answer retries the whole body; 2xx and other 4xx end it."""

    def __init__(self, webhook, context, events: list[dict]):
        self.webhook, self.context, self.events = webhook, context, events
        self.attempts = 0
        self.answers: list[int] = []
        self.done = False

    def attempt(self) -> None:
        if self.done:
            return
        self.attempts += 1
        assert self.attempts <= MAX_TWILIO_ATTEMPTS, "a webhook delivery never succeeded"
        try:
            status, _ = post(self.webhook, self.context, self.events)
        except Crash:
            self.answers.append(502)  # API Gateway's answer when the function dies
            return
        self.answers.append(status)
        self.done = status < 500 and status != 429


def run_all(faults: Faults, deliveries: list) -> None:
    """Each delivery's attempts in turn, until all are done (cut-ins may have advanced some already)."""
    for delivery in deliveries:
        while not delivery.done:
            faults.attempt(delivery)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


# ---- one moto world per module, reset between histories or tests ----------------------------

class World:
    def __init__(self, consumer, webhook, parameters: dict[str, str] | None = None):
        from twilio_sink import aws, config, pipeline

        self.stack = Stack(LOCAL_TEST_AUTH_TOKEN, parameters=parameters)
        os.environ.update(self.stack.env)
        aws.reset_clients()
        config.settings.cache_clear()
        pipeline.default_pipeline.cache_clear()
        core = pipeline.default_pipeline()
        core._pool = InlineExecutor()  # one invocation = one deterministic sequence of AWS calls
        core.clock = CLOCK.time
        self.faults = Faults()
        self.faults.install({service: aws.client(service) for service in ("dynamodb", "sns", "sqs")})
        self.applied = record_applied_changes(core.store, self.stack)
        self.kinesis = boto3.client("kinesis", region_name=REGION)
        self.kinesis.create_stream(StreamName=STREAM_NAME, ShardCount=1)
        self.failure_queue = self.stack.sqs.create_queue(QueueName="stream-failures")["QueueUrl"]
        self.consumer, self.webhook, self.context = consumer, webhook, LambdaContext()
        self.resources = recovery.Resources(self.stack.table_name, self.stack.topic_arn, self.stack.dlq_url,
                                            self.failure_queue, SAMPLE_ACCOUNT_SID,
                                            history_retention_days=self.stack.env["HISTORY_RETENTION_DAYS"])

    def reset(self) -> None:
        for item in self.stack.items():
            self.stack.ddb.delete_item(TableName=self.stack.table_name,
                                       Key={"pk": {"S": item["pk"]}, "sk": {"S": item["sk"]}})
        self.stack.notifications(), self.stack.dead_letters(), self.stack._drain(self.failure_queue)
        self.applied.clear()

    def send_on_failure(self, body: str) -> None:
        self.stack.sqs.send_message(QueueUrl=self.failure_queue, MessageBody=body)


@contextmanager
def moto_world(consumer, webhook, parameters: dict[str, str] | None = None) -> Iterator[World]:
    """A World on the template's stack with these parameters; the core's cached clients dropped after."""
    with mock_aws():
        yield World(consumer, webhook, parameters)
    from twilio_sink import aws, config, pipeline

    aws.reset_clients()
    config.settings.cache_clear()
    pipeline.default_pipeline.cache_clear()


@pytest.fixture(scope="module")
def world(consumer, webhook):
    with moto_world(consumer, webhook) as built:
        yield built


def redrive_args(**overrides) -> argparse.Namespace:
    return argparse.Namespace(**({"dry_run": False, "max_messages": 0, "visibility_seconds": 30, "wait_seconds": 0}
                                 | overrides))
