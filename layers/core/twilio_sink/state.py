"""The status table's items (contract 2) as typed values: the one place their attributes are named.

`store.py` reads items into these types and writes a `StateWrite` by its `attributes()`; everything
else (the pipeline, the precedence rules, the reconciler, the status command) uses their fields,
never an item's keys. Plain data: nothing of Twilio, nothing of boto3.
"""

import hashlib
import zlib
from dataclasses import dataclass, field
from typing import Any

STATE_SK = "state"
UPDATED_AT = "updated_at"  # on the state item: when its status or claims were last written
EXPIRES_AT = "expires_at"  # the table's TTL attribute (epoch seconds), on history items only
# The Unsettled index (template.yaml): state items whose status is not final, by the time they are
# due for a check (reconcile/). Sparse: a state write removes both attributes at a final status.
UNSETTLED = "unsettled"
CHECK_AFTER = "check_after"
# Entities of one kind are spread over several index partitions: one partition takes about 1,000
# writes/s, and a throttled index throttles the table's own writes.
UNSETTLED_SHARDS = 8
ACCOUNT = "account_sid"
# The attributes of an event as the table keeps it: the winner's on a state item, each event's in history.
_EVENT = ("entity", "id", "status", "event_type", "event_id", "event_time", "data")
_STATE = {"pk", "sk", "order_key", "version", "claims", UPDATED_AT, ACCOUNT, UNSETTLED, CHECK_AFTER, *_EVENT}


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

    def texts(self) -> tuple[str, str]:
        """The two ways a state item can hold this claim: with its event time, or without (the item's own)."""
        return self.text(), self.text(self.event_time)

    @classmethod
    def from_text(cls, text: str, item_time: str) -> "Claim":
        """The claim `text` states, read from the state item whose `event_time` is `item_time`."""
        previous, event_time, holder, until = text.split("|")
        return cls(previous or None, event_time or item_time, holder, int(until))


@dataclass(frozen=True)
class Recorded:
    """An event as the table keeps it: the winner of a state item, or one event of the history."""

    entity: str
    id: str
    status: str
    event_type: str
    event_id: str
    event_time: str  # ISO-8601 UTC
    data: str  # the event's `data` as JSON text

    @property
    def pk(self) -> str:
        return f"{self.entity}#{self.id}"

    def attributes(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in _EVENT}

    @classmethod
    def of(cls, item: dict[str, Any]) -> "Recorded":
        return cls(*(item[name] for name in _EVENT))


@dataclass(frozen=True)
class EntityState:
    """An entity's state item as read: its winning event, precedence, version, claims and indexes."""

    winner: Recorded
    order_key: str
    version: int
    updated_at: str = ""
    account_sid: str | None = None
    claims: dict[str, Claim] = field(default_factory=dict)  # event id -> claim
    check_after: str | None = None  # due for reconciliation (None: final, or not reconciled)
    indexed: dict[str, str] = field(default_factory=dict)  # the family's index attributes

    @property
    def pk(self) -> str:
        return self.winner.pk

    @property
    def status(self) -> str:
        return self.winner.status

    @classmethod
    def of(cls, item: dict[str, Any]) -> "EntityState":
        winner = Recorded.of(item)
        return cls(
            winner=winner,
            order_key=item["order_key"],
            version=int(item["version"]),
            updated_at=item.get(UPDATED_AT, ""),
            account_sid=item.get(ACCOUNT) or None,
            claims={event_id: Claim.from_text(text, winner.event_time)
                    for event_id, text in (item.get("claims") or {}).items()},
            check_after=item.get(CHECK_AFTER),
            indexed={name: value for name, value in item.items() if name not in _STATE},
        )


@dataclass(frozen=True)
class DueEntity:
    """An entry of the Unsettled index: what its projection (template.yaml) keeps of a state item."""

    pk: str
    entity: str
    id: str
    status: str
    event_type: str
    data: str  # the winning event's `data` as JSON text
    version: int
    updated_at: str

    @classmethod
    def of(cls, item: dict[str, Any]) -> "DueEntity":
        return cls(item["pk"], item["entity"], item["id"], item["status"], item.get("event_type", ""),
                   item.get("data") or "{}", int(item["version"]), item.get(UPDATED_AT, ""))


@dataclass(frozen=True)
class OperationMessage:
    """An entry of the ByOperation index: what its projection (template.yaml) keeps of a message's state."""

    pk: str
    id: str
    status: str
    event_type: str
    event_time: str
    updated_at: str

    @classmethod
    def of(cls, item: dict[str, Any]) -> "OperationMessage":
        return cls(item["pk"], item["id"], item["status"], item.get("event_type", ""), item.get("event_time", ""),
                   item.get(UPDATED_AT, ""))


@dataclass(frozen=True)
class HistoryEntry:
    """One accepted event under its entity's pk, in event time order."""

    event: Recorded
    order_key: str
    source: str  # the door it came through (contract 2 names it so): kinesis, webhook, reconciler, backfill
    received_at: str
    expires_at: int | None = None

    @classmethod
    def of(cls, item: dict[str, Any]) -> "HistoryEntry":
        expires = item.get(EXPIRES_AT)
        return cls(Recorded.of(item), item["order_key"], item.get("source", ""), item.get("received_at", ""),
                   int(expires) if expires is not None else None)

    def attributes(self) -> dict[str, Any]:
        return self.event.attributes() | {"order_key": self.order_key, "source": self.source,
                                          "received_at": self.received_at}


@dataclass(frozen=True)
class StateWrite:
    """One conditional write of a state item: a new winner with its claims, or its claims alone."""

    winner: Recorded | None  # None: only the claims change
    order_key: str | None  # the winner's; None with no winner
    expected_version: int | None  # the version read; None: the item must not exist yet
    claims: dict[str, Claim]  # the item's whole claims map after the write
    updated_at: str
    account_sid: str | None = None
    indexed: dict[str, str] = field(default_factory=dict)
    check_after: str | None = None  # the winner's next reconciliation; None: it leaves the Unsettled index

    def attributes(self) -> dict[str, Any]:
        """The attributes this write sets, `order_key` and `version` aside (the store's conditions)."""
        item_time = self.winner.event_time if self.winner else None
        # The claims map is written whole, with the item's event_time: the winner's claim need not repeat it.
        attributes: dict[str, Any] = {"claims": {event_id: claim.text(item_time) for event_id, claim in self.claims.items()},
                                      UPDATED_AT: self.updated_at}
        if self.winner is None:
            return attributes
        attributes |= self.winner.attributes() | self.indexed
        if self.account_sid:
            attributes[ACCOUNT] = self.account_sid
        if self.check_after:
            attributes |= unsettled_attributes(self.winner.entity, self.winner.pk, self.check_after)
        return attributes

    def removes(self) -> tuple[str, ...]:
        """A final status leaves the Unsettled index: nothing is left to reconcile."""
        return (UNSETTLED, CHECK_AFTER) if self.winner is not None and not self.check_after else ()


def unsettled_keys(entity: str) -> list[str]:
    return [f"{entity}#{shard}" for shard in range(UNSETTLED_SHARDS)]


def unsettled_attributes(entity: str, pk: str, check_after: str) -> dict[str, str]:
    """What puts a state item into the Unsettled index, due for a check at `check_after` (ISO UTC)."""
    shard = zlib.crc32(pk.encode()) % UNSETTLED_SHARDS
    return {UNSETTLED: f"{entity}#{shard}", CHECK_AFTER: check_after}


def history_sk(event_time: str, event_id: str) -> str:
    """History items sort after the state item and in event time order under the entity's pk."""
    return f"event#{event_time}#{event_id}"
