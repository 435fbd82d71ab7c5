"""What arrived, one item per record or event, decoded as far as it goes.

A Kinesis record holds one CloudEvent; a webhook body holds an array of them (or one object).
Items that cannot be decoded, or come from an account this stack does not accept, carry their
`Poison` so the pipeline can dead-letter them; an admitted item carries the account it belongs to.
"""

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from .accounts import AccountRule
from .dead_letters import DeadLetter, Door
from .envelope import CloudEvent, cloudevent_from_record, split_webhook_body, to_cloudevent
from .json_text import compact
from .poison import Poison, PoisonReason
from .registry import accounts_named
from .times import now_utc


@dataclass
class Received:
    door: Door  # how it came in: kept as `source` in history items and dead letters (contracts 2, 4)
    raw: str  # the original record or event as text, for dead letters
    origin: dict[str, Any] = field(default_factory=dict)
    event: CloudEvent | None = None  # what was decoded, even when it is refused (its account)
    poison: Poison | None = None
    account: str | None = None  # the account it was admitted for (accounts.AccountRule.owner)

    def cloudevent(self) -> CloudEvent:
        """The decoded, admitted event; raises the reason it could not be decoded or admitted."""
        if self.poison is not None or self.event is None:
            raise self.poison or Poison(PoisonReason.NOT_CLOUDEVENT, "nothing was decoded")
        return self.event

    def dead_letter(self, poison: Poison) -> DeadLetter:
        """This arrival, refused for `poison` (contract 4)."""
        event = self.event
        return DeadLetter.build(
            self.raw,
            reason=poison.reason,
            detail=poison.detail,
            source=self.door,
            received_at=now_utc(),
            event_id=event.id if event else None,
            event_type=event.type if event else None,
            origin=self.origin,
        )

    @property
    def corrects(self) -> bool:
        """Twilio's REST API's word (reconciliation, backfill), not an event Twilio delivered."""
        return self.door in ("reconciler", "backfill")

    @property
    def retry_while_held(self) -> bool:
        """Whether an event whose claim another carrier holds must be answered "retry later".

        A webhook request may be Twilio's retry of the very delivery whose earlier attempt holds the
        claim (it answered 503 at its deadline and works on): answering 200 would end that delivery,
        and should the holder die nobody would publish. A stream record's holder is always another
        record, which Lambda retries on its own; a correction's is an earlier run of the same batch.
        """
        return self.door == "webhook"

    @property
    def carrier(self) -> str:
        """What carried it (see `Change.carrier`): this stream record, this webhook request, or this
        reconciliation (or backfill) batch, whose own retries reuse it."""
        if self.door == "kinesis":
            return f"kinesis:{self.origin.get('sequence_number')}"
        if self.door == "webhook":
            return f"webhook:{self.origin.get('request_id')}"
        return f"{self.door}:{self.origin.get('batch')}"


def from_kinesis(record: KinesisStreamRecord, accounts: AccountRule) -> Received:
    """`accounts`: whose events the stream door accepts."""
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
        event = cloudevent_from_record(raw)
    except Poison as poison:
        return Received("kinesis", text, origin, poison=poison)
    return _admitted(Received("kinesis", text, origin, event=event), accounts)


def from_webhook(body: str, origin: dict[str, Any], accounts: AccountRule) -> list[Received]:
    """`accounts`: whose events this delivery may carry (narrowed to the account whose token signed it)."""
    try:
        events = split_webhook_body(body)
    except Poison as poison:
        return [Received("webhook", body, origin, poison=poison)]
    received = []
    for index, obj in enumerate(events):
        where = origin | {"index": index}
        raw = compact(obj)
        try:
            event = to_cloudevent(obj)
        except Poison as poison:
            received.append(Received("webhook", raw, where, poison=poison))
        else:
            received.append(_admitted(Received("webhook", raw, where, event=event), accounts))
    return received


def _admitted(item: Received, accounts: AccountRule) -> Received:
    """`item` with the account it belongs to, or with its refusal (the event stays: what it claimed to be)."""
    assert item.event is not None
    try:
        item.account = accounts.owner(accounts_named(item.event))
    except Poison as poison:
        item.poison = poison
    return item
