"""`twilio-sink replay`: send dead letters back through the pipeline after a fix, removing those that succeed.

Each dead letter (contract 4) holds the original record or event (`raw`) and where it came from.
This command rebuilds what arrived from it, exactly as the functions decode it, and runs it through
the core pipeline. A letter that now succeeds (applied, stale or duplicate) is deleted; one that is
still poison stays in the queue as it is (it is not sent again, so nothing is duplicated); one that
hits a transient AWS failure stays for a later run.
"""

import argparse
import base64
import json
import sys
from dataclasses import dataclass

from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from pydantic import ValidationError

from sink_ops import recovery
from twilio_sink.dead_letters import DeadLetter
from twilio_sink.envelope import parse_json, to_cloudevent
from twilio_sink.poison import Poison, PoisonReason
from twilio_sink.received import Received, from_kinesis, from_webhook
from twilio_sink.registry import route


class NotReplayable(Exception):
    """The letter cannot be rebuilt into what arrived (its raw text was cut, or it is not a dead letter)."""


@dataclass
class Summary:
    letters: int = 0
    replayed: int = 0  # succeeded (deleted unless dry run)
    still_poison: int = 0
    retry_later: int = 0
    not_replayable: int = 0


def rebuild(letter: DeadLetter, resources: recovery.Resources) -> list[Received]:
    """What arrived, decoded again by today's code (a webhook letter holds one event, or a whole unusable body)."""
    if letter.raw_truncated:
        raise NotReplayable("its raw text was cut at 100,000 characters (its origin says where a stream "
                            "record is in the stream)")
    if letter.source == "webhook":
        origin = {k: v for k, v in letter.origin.items() if k != "index"}
        return from_webhook(letter.raw, origin, resources.webhook_accounts(letter.origin.get("signed_by")))
    if letter.source in ("reconciler", "backfill"):
        # A correction, applied again as one (its batch is its carrier, as when it was first applied).
        try:
            return [Received(letter.source, letter.raw, letter.origin, event=to_cloudevent(parse_json(letter.raw)))]
        except Poison as poison:
            return [Received(letter.source, letter.raw, letter.origin, poison=poison)]
    # An undecodable record's raw is its data as Lambda gave it (base64); any other is the decoded text.
    data = letter.raw if letter.reason == PoisonReason.UNDECODABLE else base64.b64encode(
        letter.raw.encode("utf-8")).decode("ascii")
    origin = letter.origin
    record = {
        "kinesis": {"partitionKey": origin.get("partition_key") or "", "data": data,
                    "sequenceNumber": origin.get("sequence_number") or "replay",
                    "kinesisSchemaVersion": "1.0", "approximateArrivalTimestamp": 0},
        "eventSource": "aws:kinesis",
        "eventID": f"{origin.get('shard_id')}:{origin.get('sequence_number')}",
        "eventSourceARN": origin.get("event_source_arn") or "",
    }
    return [from_kinesis(KinesisStreamRecord(record), resources.stream_accounts())]


def poison_reason(item: Received) -> str | None:
    try:
        if item.poison:
            raise item.poison
        route(item.event, item.account)
    except Poison as poison:
        return f"{poison.reason}: {poison.detail}"
    return None


def replay(resources: recovery.Resources, args: argparse.Namespace, out=None) -> Summary:
    out = out or sys.stdout
    summary = Summary()
    # Still-poison letters are found before the pipeline runs, so it never sends a dead letter again.
    core = None if args.dry_run else recovery.pipeline(resources)
    queue = resources.dead_letter_queue_url
    kept: list[dict] = []  # visible again only after the loop, or it would receive them again
    try:
        for message in recovery.receive_all(queue, args):
            summary.letters += 1
            label = f"  [{summary.letters}]"
            try:
                letter = DeadLetter.model_validate(json.loads(message["Body"]))
                received = rebuild(letter, resources)
            except (ValueError, ValidationError, NotReplayable) as error:
                summary.not_replayable += 1
                print(f"{label} kept, not replayable: {error}", file=out)
                kept.append(message)
                continue
            what = f"{letter.reason} {letter.event_type or ''} {letter.event_id or ''}".strip()
            problems = [reason for reason in map(poison_reason, received) if reason]
            if problems:
                summary.still_poison += 1
                print(f"{label} kept, still poison ({what}): {'; '.join(problems)}", file=out)
                kept.append(message)
                continue
            if core is None:
                summary.replayed += 1
                print(f"{label} would replay ({what}): now valid", file=out)
                kept.append(message)
                continue
            outcome = recovery.process(core, received)
            if outcome.failed:
                summary.retry_later += 1
                print(f"{label} kept, transient AWS failure ({what}): run replay again later", file=out)
                kept.append(message)
                continue
            recovery.delete(queue, message)
            summary.replayed += 1
            result = ", ".join(f"{k} {v}" for k, v in outcome.summary().items() if v) or "nothing to do"
            print(f"{label} replayed and removed ({what}): {result}", file=out)
    finally:
        for message in kept:
            recovery.release(queue, message)
    return summary


def _report(summary: Summary, dry_run: bool) -> tuple[str, bool]:
    verb = "would be replayed" if dry_run else "replayed and removed"
    kept = summary.still_poison + summary.retry_later + summary.not_replayable
    return (f"Done: {summary.letters} letter(s); {summary.replayed} {verb}; kept {kept} "
            f"({summary.still_poison} still poison, {summary.retry_later} to retry, "
            f"{summary.not_replayable} not replayable).", kept == 0)


COMMAND = recovery.Command("replay", __doc__, "Replaying dead letters", "letter", "replayed", "dead_letter_queue_url",
                           ("table_name", "topic_arn", "history_retention_days"), replay, _report)
main = COMMAND.main


if __name__ == "__main__":
    sys.exit(main())
