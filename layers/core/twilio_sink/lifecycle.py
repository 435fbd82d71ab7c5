"""Which event wins: the precedence rules of contract 2, free of any AWS concern.

Every event is reduced to an `order_key`, a text that sorts in precedence order (fixed-width
fields, the event id last as a deterministic tie-break). "Newer wins" is then a plain comparison,
which DynamoDB can also enforce in a condition, so the final state never depends on arrival order.
"""

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
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
    # The Twilio account (or subaccount) it belongs to: the one it names, else the one it was admitted for.
    account_sid: str | None = None
    indexed: Mapping[str, str] = field(default_factory=dict)  # the family's index attributes
    # What carried it: a stream record ("kinesis:<sequence number>") or one webhook request
    # ("webhook:<request id>"). Neither runs twice at once: Lambda retries a record only after the
    # invocation that had it ended, and each Twilio retry is a new request.
    carrier: str = ""
    # How long this status may stay unchanged before reconciliation asks Twilio; None: never (final).
    recheck_after: timedelta | None = None
    # An answer of Twilio's REST API (reconcile.py), not an event: it corrects a status or does nothing.
    corrects: bool = False

    @property
    def pk(self) -> str:
        return f"{self.entity}#{self.entity_id}"


# A claim's holder when its notification was published but its history item could not be written.
PUBLISHED = "published"


def holder(carrier: str) -> str:
    """A short fixed-size name for a carrier (a sequence number is 56 digits): only equality matters."""
    return hashlib.blake2b(carrier.encode(), digest_size=4).hexdigest()


@dataclass(frozen=True)
class Claim:
    """An applied change whose notification is not yet known to be published, and who may publish it.

    The notification is rebuilt from the redelivered event and `previous`, so the state item keeps
    ~100 bytes per change instead of the body. It counts as published once the event's history item
    exists: that item is written only after the notification was.
    """

    previous: str | None  # the status the change replaced
    event_time: str  # with the event id, the key of the event's history item
    holder: str  # `holder(carrier)` of the carrier that may publish it, or PUBLISHED
    until: int  # epoch seconds by which the holder's invocation has certainly ended

    def text(self, item_time: str | None = None) -> str:
        """One string, `previous|event_time|holder|until`: a state item must stay under 1 KB (1 write unit).

        `item_time` is the `event_time` of the state item written in the same write: the claim of that
        item's own winner leaves its time out rather than repeat it (`from_text` puts it back). Claims
        rewritten on their own (`StatusStore.replace_claims`) keep their time: the item's may have moved.
        """
        time = "" if self.event_time == item_time else self.event_time
        return f"{self.previous or ''}|{time}|{self.holder}|{self.until}"

    @classmethod
    def from_text(cls, text: str, item_time: str) -> "Claim":
        """The claim `text` states, read from the state item whose `event_time` is `item_time`."""
        previous, event_time, holder, until = text.split("|")
        return cls(previous or None, event_time or item_time, holder, int(until))


@dataclass(frozen=True)
class Current:
    """What the store holds for an entity right now."""

    status: str
    order_key: str
    version: int
    claims: dict[str, Claim] = field(default_factory=dict)  # event id -> claim


@dataclass(frozen=True)
class Notification:
    key: str  # the order key of the change it announces
    body: str  # JSON of contract 3
    attributes: dict[str, str]


@dataclass
class Plan:
    """The outcome of a group of events for one entity, in arrival order."""

    applied: list[tuple[Change, str | None]] = field(default_factory=list)  # (change, previous status)
    stale: list[Change] = field(default_factory=list)
    duplicates: list[Change] = field(default_factory=list)
    # Redelivered events whose claim is taken over (their own, or an ended holder's): published again.
    republish: list[tuple[Change, str | None]] = field(default_factory=list)
    # Event ids whose claim a live holder keeps: that holder publishes them, not this carrier.
    deferred: set[str] = field(default_factory=set)
    published: set[str] = field(default_factory=set)  # claims known published: dropped by the write
    claims: dict[str, Claim] = field(default_factory=dict)  # the claims the write leaves on the item

    @property
    def winner(self) -> Change | None:
        return self.applied[-1][0] if self.applied else None

    @property
    def writes(self) -> bool:
        return bool(self.applied or self.republish)

    @property
    def published_now(self) -> list[str]:
        """The event ids of the notifications below, once published."""
        return [change.event.id for change, _ in self.republish + self.applied]

    def notifications(self) -> list[Notification]:
        return [notification(change, previous) for change, previous in self.republish + self.applied]


def plan(current: Current | None, changes: list[Change], published: Collection[str] = (),
         now: float = 0.0, until: int = 0) -> Plan:
    """Classify each event as applied, stale or duplicate against the current state, and settle claims.

    An event is applied when it outranks everything before it (stored or earlier in the group):
    `queued, sent, delivered` in that order are three applied changes; `delivered, queued, sent`
    are one. An event with the current winner's key (or repeated in the group) is a duplicate;
    anything else older is stale, and so is a correction (reconcile.py) that confirms the status.
    Each applied change gets a claim held by its carrier until `until`.

    `published` names the claims whose notification is known published (their history item exists);
    so are claims marked PUBLISHED. Both are dropped by the write.
    A redelivered event whose claim is not among them was applied but maybe never published (the
    holder died, or SNS failed): its carrier takes the claim over and publishes it again when the
    claim is its own (a record is never processed twice at once) or its holder has certainly ended
    (`until` passed). A claim held by another live carrier is left to it (`deferred`): publishing
    it here too is how one change would reach subscribers twice.
    """
    result = Plan()
    best = current.order_key if current else None
    status = current.status if current else None
    seen = {best} if best else set()
    claims = dict(current.claims) if current else {}
    result.published = {event_id for event_id, claim in claims.items()
                        if event_id in published or claim.holder == PUBLISHED}
    for event_id in result.published:
        del claims[event_id]
    stored = dict(claims)
    for change in changes:
        key, event_id = change.order_key, change.event.id
        if key in seen:
            result.duplicates.append(change)
        elif change.corrects and change.status == status:
            # Twilio confirms the stored status (its event may have arrived while it was asked).
            result.stale.append(change)
        elif best is None or key > best:
            result.applied.append((change, status))
            claims[event_id] = Claim(status, change.event.time_utc, holder(change.carrier), until)
            best, status = key, change.status
            seen.add(key)
            continue
        else:
            result.stale.append(change)
        seen.add(key)
        # Only a claim found stored counts: one made by this group is this group's to publish.
        claim = stored.get(event_id)
        if claim is None or event_id in result.deferred or any(c.event.id == event_id for c, _ in result.republish):
            continue
        if claim.holder == holder(change.carrier) or claim.until <= now:
            result.republish.append((change, claim.previous))
            claims[event_id] = replace(claim, holder=holder(change.carrier), until=until)
        else:
            result.deferred.add(event_id)
    # Claims were applied in key order, all below any fresh change: sorted, they come first.
    result.republish.sort(key=lambda taken: taken[0].order_key)
    result.claims = claims
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
    attributes = {"entity": change.entity, "status": change.status, "event_type": event.type}
    if change.account_sid:
        # Lets an ISV route each subaccount's changes with a filter policy.
        attributes["account_sid"] = change.account_sid
    return Notification(
        key=change.order_key,
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        attributes=attributes,
    )


def key(*parts: str) -> str:
    return "|".join(parts)


def padded(number: int, width: int = 15) -> str:
    return f"{number:0{width}d}"
