"""What arrived, one item per record or event, decoded as far as it goes.

A Kinesis record holds one CloudEvent; a webhook body holds an array of them (or one object).
Items that cannot be decoded, or come from an account this stack does not accept, carry their
`Poison` so the pipeline can dead-letter them.
"""

import base64
import binascii
import json
from collections.abc import Set
from dataclasses import dataclass, field
from typing import Any, Literal

from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from .accounts import check_account
from .envelope import CloudEvent, Poison, PoisonReason, cloudevent_from_record, split_webhook_body, to_cloudevent
from .registry import accounts_named


@dataclass
class Received:
    source: Literal["kinesis", "webhook", "reconciler", "backfill"]
    raw: str  # the original record or event as text, for dead letters
    origin: dict[str, Any] = field(default_factory=dict)
    event: CloudEvent | None = None
    poison: Poison | None = None

    def cloudevent(self) -> CloudEvent:
        """The decoded event; raises the reason it could not be decoded."""
        if self.event is None:
            raise self.poison or Poison(PoisonReason.NOT_CLOUDEVENT, "nothing was decoded")
        return self.event

    @property
    def corrects(self) -> bool:
        """Twilio's REST API's word (reconciliation, backfill), not an event Twilio delivered."""
        return self.source in ("reconciler", "backfill")

    @property
    def carrier(self) -> str:
        """What carried it (see `Change.carrier`): this stream record, this webhook request, or this
        reconciliation (or backfill) batch, whose own retries reuse it."""
        if self.source == "kinesis":
            return f"kinesis:{self.origin.get('sequence_number')}"
        if self.source == "webhook":
            return f"webhook:{self.origin.get('request_id')}"
        return f"{self.source}:{self.origin.get('batch')}"


def from_kinesis(record: KinesisStreamRecord, accounts: Set[str]) -> Received:
    """`accounts`: the Twilio accounts whose events are accepted."""
    kinesis = record.kinesis
    origin = {
        "sequence_number": kinesis.sequence_number,
        "partition_key": kinesis.partition_key,
        "event_source_arn": record.event_source_arn,
        "shard_id": record.event_id.split(":", 1)[0] if record.event_id else None,
    }
    try:
        raw = base64.b64decode(kinesis.data, validate=True)
    except (binascii.Error, ValueError) as error:
        poison = Poison(PoisonReason.UNDECODABLE, f"record data is not base64: {error}")
        return Received("kinesis", str(kinesis.data), origin, poison=poison)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = kinesis.data  # keep undecodable bytes as their base64 form
    try:
        return Received("kinesis", text, origin, event=_accepted(cloudevent_from_record(raw), accounts))
    except Poison as poison:
        return Received("kinesis", text, origin, poison=poison)


def from_webhook(body: str, origin: dict[str, Any], accounts: Set[str]) -> list[Received]:
    """`accounts`: the Twilio accounts whose events are accepted."""
    try:
        events = split_webhook_body(body)
    except Poison as poison:
        return [Received("webhook", body, origin, poison=poison)]
    received = []
    for index, obj in enumerate(events):
        where = origin | {"index": index}
        raw = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
        try:
            received.append(Received("webhook", raw, where, event=_accepted(to_cloudevent(obj), accounts)))
        except Poison as poison:
            received.append(Received("webhook", raw, where, poison=poison))
    return received


def _accepted(event: CloudEvent, accounts: Set[str]) -> CloudEvent:
    check_account(accounts_named(event), accounts)
    return event
