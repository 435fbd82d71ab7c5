"""The local event source mapping retries the way Lambda does (tools/sink_local/kinesis.py), in moto."""

import json

import pytest

from sink_local.functions import FunctionError
from sink_local.kinesis import StreamPoller

FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:StreamConsumerFunction"


class Consumer:
    """Records each batch's sequence numbers and answers from a script of responses."""

    def __init__(self, *answers):
        self.batches: list[list[str]] = []
        self.answers = list(answers)

    def __call__(self, event: dict):
        sequences = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
        self.batches.append(sequences)
        answer = self.answers.pop(0) if self.answers else {"batchItemFailures": []}
        return answer(sequences) if callable(answer) else answer


@pytest.fixture
def stream(stack):
    source = stack.event_source("StreamConsumerFunction", "Kinesis")
    name = source["Stream"].rsplit("/", 1)[1]
    shard = stack.kinesis.list_shards(StreamName=name)["Shards"][0]["ShardId"]

    def put(count: int) -> list[str]:
        return [stack.kinesis.put_record(StreamName=name, Data=json.dumps({"n": n}).encode(), PartitionKey="p",
                                         ExplicitHashKey="0")["SequenceNumber"] for n in range(count)]

    def poller(consumer, **overrides) -> StreamPoller:
        return StreamPoller(stack.kinesis, source["Stream"], consumer, source | overrides, FUNCTION_ARN,
                            sqs=stack.sqs, retry_delay=0)

    return put, poller, shard


def test_batches_are_lambda_shaped_and_sized_by_the_template(stream, stack):
    put, poller, shard = stream
    consumer = Consumer()
    local = poller(consumer, BatchSize=2)  # the template's BatchSize, lowered to see several batches
    sequences = put(5)
    while local.poll_once():
        pass
    assert consumer.batches == [sequences[0:2], sequences[2:4], sequences[4:5]]
    assert local.done_with({shard: sequences[-1]})


def test_retry_starts_at_the_lowest_failed_sequence_number(stream):
    put, poller, _ = stream
    consumer = Consumer(lambda batch: {"batchItemFailures": [{"itemIdentifier": batch[3]}, {"itemIdentifier": batch[1]}]})
    local = poller(consumer)  # StartingPosition LATEST (the template's): records put from now on
    sequences = put(4)
    while local.poll_once():
        pass
    assert consumer.batches == [sequences, sequences[1:]]


def test_an_unknown_identifier_or_a_function_error_retries_the_whole_batch_bisected(stream):
    put, poller, _ = stream
    def crash(batch):
        raise FunctionError("RuntimeError", "boom")

    consumer = Consumer({"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]}, crash)
    local = poller(consumer)
    sequences = put(4)
    while local.poll_once():
        pass
    # unknown id: all again; function error: bisected (half), then the rest.
    assert consumer.batches == [sequences, sequences, sequences[:2], sequences[2:]]


def test_exhausted_retries_send_lambdas_failure_record_to_the_on_failure_queue(stream, stack):
    put, poller, shard = stream
    local = poller(Consumer(), MaximumRetryAttempts=2)
    sequences = put(3)
    consumer = Consumer(*[lambda batch: {"batchItemFailures": [{"itemIdentifier": sequences[1]}]}] * 10)
    local.invoke = consumer
    while local.poll_once():
        pass
    # The first try, then 2 retries from the failed record; then the retried batch is given up (as
    # Lambda does, the records after the failed one with it) and the shard moves on.
    assert consumer.batches == [sequences, sequences[1:], sequences[1:]]
    failures = stack.stream_failures()
    assert len(failures) == 1
    info = failures[0]["KinesisBatchInfo"]
    assert (info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        shard, sequences[1], sequences[2], 2)
    assert failures[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert local.done_with({shard: sequences[-1]})
