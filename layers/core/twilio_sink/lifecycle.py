"""Which event wins: the precedence rules of contract 2, free of any AWS concern.

Every event is reduced to an `order_key`, a text that sorts in precedence order (fixed-width
fields, the event id last as a deterministic tie-break). "Newer wins" is then a plain comparison,
which DynamoDB can also enforce in a condition, so the final state never depends on arrival order.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from .envelope import CloudEvent


@dataclass(frozen=True)
class Change:
    """One validated event, routed to the entity it describes."""

    entity: str
    entity_id: str
    status: str
    order_key: str
    event: CloudEvent
    indexed: Mapping[str, str] = field(default_factory=dict)  # the family's index attributes
    # Which delivery carried it ("kinesis:<sequence number>" or "webhook"): the one that Lambda or
    # Twilio retries after a failure, so the one entitled to republish its pending notification.
    delivery: str = ""
    # How long this status may stay unchanged before reconciliation asks Twilio; None: never (final).
    recheck_after: timedelta | None = None
    # An answer of Twilio's REST API (reconcile.py), not an event: it corrects a status or does nothing.
    corrects: bool = False

    @property
    def pk(self) -> str:
        return f"{self.entity}#{self.entity_id}"


@dataclass(frozen=True)
class OutboxEntry:
    body: str  # the notification, JSON of contract 3
    by: str  # the delivery that wrote it (see `Change.delivery`): only its retry republishes it


@dataclass(frozen=True)
class Current:
    """What the store holds for an entity right now."""

    status: str
    order_key: str
    version: int
    # The outbox: order key -> notification written but not yet confirmed published. Keyed by the
    # order key because applied changes are applied in that order: sorting the keys restores it.
    pending: dict[str, OutboxEntry] = field(default_factory=dict)


@dataclass(frozen=True)
class Notification:
    key: str  # the order key of the change it announces
    body: str  # JSON of contract 3
    attributes: dict[str, str]

    @classmethod
    def from_body(cls, key: str, body: str) -> "Notification":
        fields = json.loads(body)
        return cls(key, body, {k: fields[k] for k in ("entity", "status", "event_type")})


@dataclass
class Plan:
    """The outcome of a group of events for one entity, in arrival order."""

    applied: list[tuple[Change, str | None]] = field(default_factory=list)  # (change, previous status)
    stale: list[Change] = field(default_factory=list)
    duplicates: list[Change] = field(default_factory=list)
    republish: list[Notification] = field(default_factory=list)  # redelivered events whose notice is pending

    @property
    def winner(self) -> Change | None:
        return self.applied[-1][0] if self.applied else None

    def notifications(self) -> list[Notification]:
        return [notification(change, previous) for change, previous in self.applied]


def plan(current: Current | None, changes: list[Change]) -> Plan:
    """Classify each event as applied, stale or duplicate against the current state.

    An event is applied when it outranks everything before it (stored or earlier in the group):
    `queued, sent, delivered` in that order are three applied changes; `delivered, queued, sent`
    are one. An event with the current winner's key (or repeated in the group) is a duplicate;
    anything else older is stale, and so is a correction (reconcile.py) that confirms the status.

    A redelivered event, duplicate or stale, whose notification is still in the outbox (the
    function died or SNS failed after the write) is published again: Lambda and Twilio always
    redeliver the event itself after such a failure. Only the event's own entry, and only when
    this is the delivery that wrote it, is taken: the same event arriving at the same time through
    the other sink (or as another stream record) finds a live writer's entry and must leave it to
    that writer, or its one change would be published twice. If that writer died, its own delivery
    is retried (or redriven) and publishes the entry.
    """
    result = Plan()
    best = current.order_key if current else None
    status = current.status if current else None
    seen = {best} if best else set()
    pending = current.pending if current else {}
    for change in changes:
        key = change.order_key
        if key in seen:
            result.duplicates.append(change)
        elif change.corrects and change.status == status:
            # Twilio confirms the stored status (its event may have arrived while it was asked).
            result.stale.append(change)
        elif best is None or key > best:
            result.applied.append((change, status))
            best, status = key, change.status
        else:
            result.stale.append(change)
        entry = pending.get(key)
        if entry and entry.by == change.delivery and all(n.key != key for n in result.republish):
            result.republish.append(Notification.from_body(key, entry.body))
        seen.add(key)
    # Outbox keys were applied in key order, all below any fresh change: sorted, they come first.
    result.republish.sort(key=lambda n: n.key)
    return result


def notification(change: Change, previous_status: str | None) -> Notification:
    event = change.event
    body = {
        "entity": change.entity,
        "id": change.entity_id,
        "status": change.status,
        "previous_status": previous_status,
        "event_type": event.type,
        "event_id": event.id,
        "event_time": event.time_utc,
        "data": event.data,
    }
    return Notification(
        key=change.order_key,
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        attributes={"entity": change.entity, "status": change.status, "event_type": event.type},
    )


def key(*parts: str) -> str:
    return "|".join(parts)


def padded(number: int, width: int = 15) -> str:
    return f"{number:0{width}d}"
