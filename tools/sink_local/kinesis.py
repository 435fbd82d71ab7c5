"""Lambda's Kinesis event source mapping, locally: poll every shard, hand the consumer Lambda-shaped
batches, and retry the way Lambda does.

- Batches hold at most `BatchSize` records of one shard, gathered for at most `MaximumBatchingWindowInSeconds`;
  reading starts at `StartingPosition` (all three from the template's event source).
- `ReportBatchItemFailures`: the batch is retried from the lowest failed sequence number (the records
  before it are checkpointed); an empty or unknown `itemIdentifier` fails the whole batch.
- A function error (exception, timeout) fails the whole batch; with `BisectBatchOnFunctionError` the
  retry takes half of it.
- After `MaximumRetryAttempts` retries of the same position the batch is given up: its metadata goes to
  the `OnFailure` destination (the message Lambda sends) and the shard moves on.
  `MaximumRecordAgeInSeconds` and `ParallelizationFactor` are not emulated (one batch per shard at a time).
"""

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sink_local.functions import FunctionError
from sink_local.stack import REGION
from sink_ops.records import lambda_record

POLL_SECONDS = 0.2  # between GetRecords calls on an idle shard (Kinesis allows 5 per second per shard)
RETRY_SECONDS = 0.5


@dataclass
class ShardState:
    shard_id: str
    iterator: str | None
    buffer: list[dict] = field(default_factory=list)  # fetched, not yet checkpointed, in order
    first_buffered_at: float | None = None
    checkpoint: int = -1  # highest sequence number done with (processed or given up)
    attempts: int = 0  # retries of the batch starting at buffer[0]
    limit: int | None = None  # a bisected batch's size


@dataclass
class BatchResult:
    shard_id: str
    size: int
    failed_from: str | None = None  # lowest failed sequence number, if any
    error: str | None = None  # function error
    gave_up: bool = False


class StreamPoller:
    """Polls all shards of a stream; `poll_once` does one step per shard, `run` loops until stopped."""

    def __init__(self, kinesis, stream_arn: str, invoke: Callable[[dict], dict | None], source: dict,
                 function_arn: str, sqs=None, on_batch: Callable[[BatchResult], None] | None = None,
                 retry_delay: float = RETRY_SECONDS):
        self.kinesis = kinesis
        self.stream_arn = stream_arn
        self.stream_name = stream_arn.rsplit("/", 1)[1]
        self.retry_delay = retry_delay
        self.invoke = invoke
        self.function_arn = function_arn
        self.sqs = sqs
        self.on_batch = on_batch or (lambda result: None)
        self.batch_size = int(source.get("BatchSize", 100))
        self.window = float(source.get("MaximumBatchingWindowInSeconds", 0))
        self.max_retries = int(source.get("MaximumRetryAttempts", -1))
        self.bisect = str(source.get("BisectBatchOnFunctionError", False)).lower() == "true"
        self.report_failures = "ReportBatchItemFailures" in (source.get("FunctionResponseTypes") or [])
        self.on_failure_url = None
        destination = (source.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination")
        if destination and sqs is not None:
            self.on_failure_url = sqs.get_queue_url(QueueName=destination.rsplit(":", 1)[1])["QueueUrl"]
        position = source.get("StartingPosition", "LATEST")
        self.shards = [
            ShardState(shard["ShardId"], kinesis.get_shard_iterator(
                StreamName=self.stream_name, ShardId=shard["ShardId"], ShardIteratorType=position)["ShardIterator"])
            for shard in kinesis.list_shards(StreamName=self.stream_name)["Shards"]
        ]
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------ progress

    def done_with(self, positions: dict[str, str]) -> bool:
        """True once every (shard id -> sequence number) given has been processed or given up."""
        with self._lock:
            by_id = {shard.shard_id: shard.checkpoint for shard in self.shards}
        return all(by_id.get(shard, -1) >= int(sequence) for shard, sequence in positions.items())

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if not self.poll_once(flush=False):
                stop.wait(POLL_SECONDS)

    # ------------------------------------------------------------------------------ one step

    def poll_once(self, flush: bool = True) -> bool:
        """Fetch and deliver one batch per shard that has one ready; True if anything was delivered.

        `flush` delivers what is buffered without waiting for the batching window (tests).
        """
        delivered = False
        for shard in self.shards:
            self._fetch(shard)
            if shard.buffer and (flush or self._ready(shard)):
                self._deliver(shard)
                delivered = True
        return delivered

    def _fetch(self, shard: ShardState) -> None:
        if shard.iterator is None or len(shard.buffer) >= self.batch_size:
            return
        response = self.kinesis.get_records(ShardIterator=shard.iterator, Limit=self.batch_size - len(shard.buffer))
        shard.iterator = response.get("NextShardIterator")
        if response["Records"] and not shard.buffer:
            shard.first_buffered_at = time.monotonic()
        shard.buffer.extend(response["Records"])

    def _ready(self, shard: ShardState) -> bool:
        full = len(shard.buffer) >= (shard.limit or self.batch_size)
        waited = shard.first_buffered_at is not None and time.monotonic() - shard.first_buffered_at >= self.window
        return full or waited or shard.attempts > 0

    def _deliver(self, shard: ShardState) -> None:
        batch = shard.buffer[: shard.limit or self.batch_size]
        result = BatchResult(shard.shard_id, len(batch))
        try:
            response = self.invoke(self._event(shard.shard_id, batch))
            failed_at = self._first_failure(batch, response)
        except FunctionError as error:
            result.error = str(error)
            failed_at = 0
        if failed_at is None:
            self._checkpoint(shard, len(batch))
            self.on_batch(result)
            return
        result.failed_from = batch[failed_at]["SequenceNumber"]
        self._checkpoint(shard, failed_at)  # the records before the first failure are done
        shard.limit = max(1, (len(batch) - failed_at) // 2) if result.error and self.bisect else None
        shard.attempts = shard.attempts + 1 if failed_at == 0 else 1
        if 0 <= self.max_retries < shard.attempts:
            self._give_up(shard, batch[failed_at:], result)
            result.gave_up = True
        self.on_batch(result)
        if not result.gave_up:
            time.sleep(self.retry_delay)

    def _first_failure(self, batch: list[dict], response: dict | None) -> int | None:
        """Index of the record to retry from, or None when the batch succeeded."""
        failures = (response or {}).get("batchItemFailures") if self.report_failures else None
        if not failures:
            return None
        positions = {record["SequenceNumber"]: index for index, record in enumerate(batch)}
        indexes = [positions.get((failure or {}).get("itemIdentifier") or "") for failure in failures]
        if any(index is None for index in indexes):
            return 0  # an identifier Lambda cannot place: the whole batch is retried
        return min(indexes)

    def _checkpoint(self, shard: ShardState, count: int) -> None:
        if count <= 0:
            return
        with self._lock:
            shard.checkpoint = int(shard.buffer[count - 1]["SequenceNumber"])
            del shard.buffer[:count]
        shard.attempts, shard.limit = 0, None
        shard.first_buffered_at = time.monotonic() if shard.buffer else None

    def _give_up(self, shard: ShardState, records: list[dict], result: BatchResult) -> None:
        if self.on_failure_url:
            self.sqs.send_message(QueueUrl=self.on_failure_url, MessageBody=json.dumps(
                self._failure_record(shard, records, result)))
        self._checkpoint(shard, len(records))

    # ------------------------------------------------------------------------------ shapes Lambda uses

    def _event(self, shard_id: str, records: list[dict]) -> dict:
        identity = self.function_arn.replace(":function:", ":role/").replace(":lambda:", ":iam:")
        return {"Records": [lambda_record(record, self.stream_arn, shard_id, awsRegion=REGION,
                                          invokeIdentityArn=identity) for record in records]}

    def _failure_record(self, shard: ShardState, records: list[dict], result: BatchResult) -> dict:
        def arrival(record: dict) -> str:
            return _iso(record["ApproximateArrivalTimestamp"])

        return {
            "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": self.function_arn,
                               "condition": "RetryAttemptsExhausted", "approximateInvokeCount": shard.attempts},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                                "functionError": "Unhandled" if result.error else None},
            "version": "1.0",
            "timestamp": _iso(datetime.now(UTC)),
            "KinesisBatchInfo": {
                "shardId": shard.shard_id,
                "startSequenceNumber": records[0]["SequenceNumber"],
                "endSequenceNumber": records[-1]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": arrival(records[0]),
                "approximateArrivalOfLastRecord": arrival(records[-1]),
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
