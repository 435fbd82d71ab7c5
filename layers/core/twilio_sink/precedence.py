"""Which event wins: the precedence rules of contract 2, free of any AWS concern.

Every event is reduced to an `order_key`, a text that sorts in precedence order (fixed-width
fields, the event id last as a deterministic tie-break). "Newer wins" is then a plain comparison,
which DynamoDB can also enforce in a condition, so the final state never depends on arrival order.
"""

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from .envelope import CloudEvent
from .json_text import compact
from .state import PUBLISHED, Claim, EntityState, Recorded, StateWrite, holder
from .times import iso_utc


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
    # An answer of Twilio's REST API (reconcile/), not an event: it corrects a status or does nothing.
    corrects: bool = False

    @property
    def pk(self) -> str:
        return f"{self.entity}#{self.entity_id}"

    def recorded(self) -> Recorded:
        """The event as the table keeps it."""
        event = self.event
        return Recorded(self.entity, self.entity_id, self.status, event.type, event.id, event.time_utc,
                        compact(event.data))


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
    dropped: set[str] = field(default_factory=set)  # claims known published: dropped by the write
    claims: dict[str, Claim] = field(default_factory=dict)  # the claims the write leaves on the item

    @property
    def winner(self) -> Change | None:
        return self.applied[-1][0] if self.applied else None

    @property
    def writes(self) -> bool:
        return bool(self.applied or self.republish)

    @property
    def to_publish(self) -> list[tuple[Change, str | None]]:
        """(change, previous status) of each notification this plan's write is to publish, in order."""
        return self.republish + self.applied

    @property
    def publish_ids(self) -> list[str]:
        """The event ids of `to_publish`: their claims, in the same order."""
        return [change.event.id for change, _ in self.to_publish]

    def state_write(self, changes: list[Change], current: EntityState | None, now: datetime) -> StateWrite:
        """The one conditional write that records this plan: its winner, if any, and its claims."""
        winner = self.winner
        version = current.version if current else None
        if winner is None:
            return StateWrite(None, None, version, self.claims, iso_utc(now))
        # Index attributes and the account from any event of the group: the winning status event may lack them.
        indexed = {name: value for change in changes for name, value in change.indexed.items()}
        account = next((change.account_sid for change in reversed(changes) if change.account_sid), None)
        # Due for a check against Twilio's REST API if nothing changes it meanwhile (reconcile/).
        check_after = iso_utc(now + winner.recheck_after) if winner.recheck_after else None
        return StateWrite(winner.recorded(), winner.order_key, version, self.claims, iso_utc(now),
                          account, indexed, check_after)


def plan(current: EntityState | None, changes: list[Change], proven: Collection[str] = (),
         now: float = 0.0, until: int = 0) -> Plan:
    """Classify each event as applied, stale or duplicate against the current state, and decide its claims.

    An event is applied when it outranks everything before it (stored or earlier in the group):
    `queued, sent, delivered` in that order are three applied changes; `delivered, queued, sent`
    are one. An event with the current winner's key (or repeated in the group) is a duplicate;
    anything else older is stale, and so is a correction (reconcile/) that confirms the status.
    Each applied change gets a claim held by its carrier until `until`.

    `proven` names the claims whose notification is proven published (their history item exists);
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
    result.dropped = {event_id for event_id, claim in claims.items()
                        if event_id in proven or claim.holder == PUBLISHED}
    for event_id in result.dropped:
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
