"""`twilio-sink redrive`: turn the stream consumer's OnFailure metadata back into records and reprocess them.

When a stream batch exhausts its retries (or its records get too old), Lambda sends only metadata to
StreamFailureQueue: the stream ARN, shard id and first/last sequence numbers. This command reads
each such message, reads the records back from the stream (GetShardIterator AT_SEQUENCE_NUMBER,
then GetRecords up to the last sequence number) while the stream still retains them, runs them
through the core pipeline, and deletes the message only when every one of its records succeeded.
Records that succeeded before are simply duplicates again: reprocessing changes and doubles nothing.
"""

import argparse
import json
import sys
from dataclasses import dataclass, field

from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from sink_ops import recovery
from sink_ops.records import lambda_record
from twilio_sink import aws
from twilio_sink.accounts import AccountRule
from twilio_sink.poison import Poison
from twilio_sink.received import Received, from_kinesis
from twilio_sink.registry import route

GET_RECORDS_LIMIT = 1000
# GetRecords may answer empty pages before the end of a shard's data; a range is given up after these.
MAX_EMPTY_PAGES = 5


class RecordsUnavailable(Exception):
    """The stream no longer holds (all of) a failed batch's records: retention passed, or a wrong stream."""


@dataclass(frozen=True)
class FailedBatch:
    stream_arn: str
    shard_id: str
    start: str
    end: str
    size: int | None

    @classmethod
    def from_message(cls, body: str) -> "FailedBatch":
        """Lambda's invocation record for a Kinesis event source (`KinesisBatchInfo`)."""
        info = json.loads(body)["KinesisBatchInfo"]
        return cls(info["streamArn"], info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"],
                   info.get("batchSize"))


@dataclass
class Summary:
    messages: int = 0
    redriven: int = 0  # messages whose records all succeeded (deleted unless dry run)
    kept: int = 0
    records: int = 0
    counts: dict[str, int] = field(default_factory=dict)


def read_records(batch: FailedBatch) -> list[dict]:
    """The batch's records, from its first to its last sequence number, as Lambda hands them over."""
    kinesis = aws.client("kinesis")
    try:
        # By name: the stream is the stack's, in this account and region (and moto resolves names only).
        iterator = kinesis.get_shard_iterator(StreamName=batch.stream_arn.split("/", 1)[-1], ShardId=batch.shard_id,
                                              ShardIteratorType="AT_SEQUENCE_NUMBER",
                                              StartingSequenceNumber=batch.start)["ShardIterator"]
    except kinesis.exceptions.ResourceNotFoundException as error:
        raise RecordsUnavailable(f"stream or shard not found: {error}") from None
    except kinesis.exceptions.InvalidArgumentException as error:
        raise RecordsUnavailable(f"sequence number {batch.start} not readable (retention passed?): {error}") from None
    records: list[dict] = []
    empty_pages = 0
    while iterator and empty_pages < MAX_EMPTY_PAGES:
        page = kinesis.get_records(ShardIterator=iterator, Limit=GET_RECORDS_LIMIT)
        iterator = page.get("NextShardIterator")
        empty_pages = 0 if page["Records"] else empty_pages + 1
        for record in page["Records"]:
            if int(record["SequenceNumber"]) > int(batch.end):
                return _checked(records, batch)
            records.append(lambda_record(record, batch.stream_arn, batch.shard_id))
    return _checked(records, batch)


def _checked(records: list[dict], batch: FailedBatch) -> list[dict]:
    sequences = [r["kinesis"]["sequenceNumber"] for r in records]
    if not sequences or sequences[0] != batch.start or sequences[-1] != batch.end:
        raise RecordsUnavailable(
            f"the stream holds {len(records)} record(s) of {batch.start}..{batch.end}, not the whole range "
            "(trimmed by retention?)")
    return records


def decoded(records: list[dict], accounts: AccountRule) -> list[Received]:
    return [from_kinesis(KinesisStreamRecord(record), accounts) for record in records]


def dry_run_counts(received: list[Received]) -> dict[str, int]:
    """What reprocessing would find, without touching the table: valid events and poison by reason."""
    counts: dict[str, int] = {}
    for item in received:
        try:
            if item.poison:
                raise item.poison
            route(item.event, item.account)
            key = "valid"
        except Poison as poison:
            key = f"poison:{poison.reason}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def redrive(resources: recovery.Resources, args: argparse.Namespace, out=None) -> Summary:
    out = out or sys.stdout
    summary = Summary()
    core = None if args.dry_run else recovery.pipeline(resources)
    queue = resources.stream_failure_queue_url
    kept: list[dict] = []  # visible again only after the loop, or it would receive them again
    try:
        for message in recovery.receive_all(queue, args):
            summary.messages += 1
            try:
                batch = FailedBatch.from_message(message["Body"])
            except (ValueError, KeyError, TypeError) as error:
                print(f"  [{summary.messages}] kept: not a Kinesis OnFailure record ({type(error).__name__}: {error})",
                      file=out)
                summary.kept += 1
                kept.append(message)
                continue
            where = f"{batch.shard_id} {batch.start}..{batch.end}"
            try:
                received = decoded(read_records(batch), resources.stream_accounts())
            except RecordsUnavailable as error:
                print(f"  [{summary.messages}] kept: {where}: {error}", file=out)
                summary.kept += 1
                kept.append(message)
                continue
            summary.records += len(received)
            if core is None:
                counts = dry_run_counts(received)
                print(f"  [{summary.messages}] would redrive {len(received)} record(s) of {where}: "
                      f"{_format(counts)}", file=out)
                summary.redriven += 1
                kept.append(message)
                continue
            outcome = recovery.process(core, received)
            for name, value in outcome.summary().items():
                summary.counts[name] = summary.counts.get(name, 0) + value
            if outcome.failed:
                print(f"  [{summary.messages}] kept: {len(outcome.failed)} of {len(received)} record(s) of {where} "
                      "failed again (transient AWS failure): run redrive again later", file=out)
                summary.kept += 1
                kept.append(message)
                continue
            recovery.delete(queue, message)
            summary.redriven += 1
            print(f"  [{summary.messages}] redriven {len(received)} record(s) of {where}: {_format(outcome.summary())}",
                  file=out)
    finally:
        for message in kept:
            recovery.release(queue, message)
    return summary


def _format(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {value}" for name, value in sorted(counts.items()) if value) or "nothing"


def _report(summary: Summary, dry_run: bool) -> tuple[str, bool]:
    verb = "would be redriven" if dry_run else "redriven and deleted"
    return (f"Done: {summary.messages} message(s), {summary.records} record(s); {summary.redriven} {verb}, "
            f"{summary.kept} kept. {_format(summary.counts)}", summary.kept == 0)


COMMAND = recovery.Command("redrive", __doc__, "Redriving stream failures", "message", "redriven", "stream_failure_queue_url",
                           ("table_name", "topic_arn", "dead_letter_queue_url", "history_retention_days"), redrive, _report)
main = COMMAND.main


if __name__ == "__main__":
    sys.exit(main())
