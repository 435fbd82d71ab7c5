"""What every family declares; the registry, the set-up and status commands and the docs need nothing else."""

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from ..envelope import CloudEvent, parse_timestamp
from ..lifecycle import key

# Twilio's Account SIDs: "AC" and 32 lowercase hex digits.
ACCOUNT_SID = re.compile(r"AC[0-9a-f]{32}")
SOURCE_ACCOUNT = re.compile(r"/Accounts/(AC[0-9a-f]{32})(?:/|$)")
# What an account field holding anything but an Account SID names: no account, so it vouches for nothing.
NOT_AN_ACCOUNT_SID = "(not an account SID)"


@dataclass(frozen=True)
class EventType:
    """One event type: the status it sets and the schema Twilio describes its payload with."""

    status: str
    # Twilio's schema name as in `dataschema` (`CommsApi.MessageQueued`). A name ending in "." is a
    # namespace (`TollFree.`): the exact name is not confirmed by Twilio's docs, only its prefix.
    schema: str
    versions: tuple[int, ...]  # the versions this family is known to read; others are counted, not refused

    def names(self, schema: str) -> bool:
        return schema.startswith(self.schema) if self.schema.endswith(".") else schema == self.schema

    @property
    def latest(self) -> int:
        return max(self.versions)


def event_types(prefix: str, statuses: Mapping[str, str], schema: str | Mapping[str, str],
                versions: Iterable[int]) -> dict[str, EventType]:
    """`{prefix + suffix: EventType}` for `{suffix: status}`; `schema` one name or one per suffix."""
    declared = tuple(versions)
    return {prefix + suffix: EventType(status, schema if isinstance(schema, str) else schema[suffix], declared)
            for suffix, status in statuses.items()}


class Family[Data: BaseModel](ABC):
    name: str  # how operators name the family (`twilio-sink connect --families`, the docs' table)
    entity: str
    id_source: str  # where the entity id comes from, in words (for the docs and the status command)
    types: Mapping[str, EventType]
    data_model: type[Data]
    # Reconciliation against Twilio's REST API (reconcile.py): the statuses after which Twilio changes
    # nothing more, and how long any other status may stay unchanged before Twilio is asked for the
    # truth. None: Twilio has no REST resource to ask, the family is not reconciled.
    final: frozenset[str] = frozenset()
    stale_after: timedelta | None = None
    precedence: str  # which event wins, in words (for the docs)
    # Payload fields read, in order, when an event has no `time` (several documented examples lack it).
    time_fields: tuple[str, ...] = ()
    # Where the payload may name the Account SID (dotted paths into `data`), read in this order; the
    # envelope's `source` path is read after them. All of them are read, by the allow-list too
    # (accounts.py): an event that names two accounts is foreign. The default covers Twilio's spellings:
    # Communications API account_sid, A2P accountsid, Programmable Messaging and Verify accountSid, and
    # the PascalCase AccountSid of Conversations and callbacks.
    account_fields: tuple[str, ...] = ("account_sid", "accountSid", "accountsid", "AccountSid")
    subscribable = True  # whether a Twilio subscription can name its types
    # Delivery health (outcomes.py): statuses an operator is paged on (a registration refused or
    # suspended), and the payload fields that hold Twilio's error code of a failed delivery.
    setbacks: frozenset[str] = frozenset()
    error_fields: tuple[str, ...] = ()

    @property
    def status_words(self) -> tuple[str, ...]:
        """Every status this family can set, in precedence order where it has one."""
        return tuple(dict.fromkeys(declared.status for declared in self.types.values()))

    def status(self, event_type: str, data: Data) -> str:
        return self.types[event_type].status

    @abstractmethod
    def entity_id(self, event: CloudEvent, data: Data) -> str: ...

    def indexed(self, data: Data) -> dict[str, str]:
        """Attributes the state item carries for the table's secondary indexes (none by default).

        Only non-empty values: DynamoDB rejects empty key attributes, and an absent one keeps the
        item out of the (sparse) index.
        """
        return {}

    def accounts_named(self, event: CloudEvent) -> list[str]:
        """Every account the event names, in the order read: the payload's account fields, then `source`.

        Read from the raw payload, so it answers before validation and never raises: the allow-list
        asks it of every event, and the state item records the first Account SID among them.
        """
        named = []
        for path in self.account_fields:
            value = _path(event.data, path)
            if value is not None:
                named.append(value if isinstance(value, str) and ACCOUNT_SID.fullmatch(value) else NOT_AN_ACCOUNT_SID)
        match = SOURCE_ACCOUNT.search(event.source)
        if match:
            named.append(match[1])
        return named

    def account_sid(self, event: CloudEvent) -> str | None:
        """The Twilio account (or subaccount) the event belongs to, if it names one: recorded on the state."""
        return next((name for name in self.accounts_named(event) if name != NOT_AN_ACCOUNT_SID), None)

    def error_code(self, event: CloudEvent) -> str | None:
        """Twilio's error code the payload states (an integer or a string in Twilio's examples), if any."""
        for path in self.error_fields:
            value = _path(event.data, path)
            if isinstance(value, int | str) and not isinstance(value, bool) and str(value).strip():
                return str(value).strip()
        return None

    def event_time(self, data: Data) -> datetime | None:
        """The payload's own timestamp, for an event without `time`."""
        for name in self.time_fields:
            moment = parse_timestamp(_field(data, name))
            if moment is not None:
                return moment
        return None

    def correction(self, status: str, stored: dict[str, Any], answered: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The type and payload of an event of this family that sets `status` (reconciliation's synthetic
        event): the stored payload with the REST answer's fields over it, in this family's shape.

        By default the type that declares `status`; a family whose status is read from the payload, or
        whose payload restates it, says so here, so that routing the event sets exactly `status`.
        """
        event_type = next(t for t, declared in self.types.items() if declared.status == status)
        return event_type, stored | answered

    def recheck_after(self, status: str) -> timedelta | None:
        """How long `status` may stay unchanged before reconciliation asks Twilio (None: never)."""
        return None if status in self.final else self.stale_after

    @abstractmethod
    def order_key(self, event: CloudEvent, data: Data, status: str) -> str:
        """Text that sorts in precedence order; must end with the event id for a total order."""


class Ranked[Data: BaseModel](Family[Data]):
    """A lifecycle that only moves forward: the higher rank wins whatever the arrival order; equal
    ranks (the ends of a lifecycle, usually) go to the later event time."""

    rank: Mapping[str, int]  # every status word, in precedence order (single-digit ranks: they sort as text)

    @property
    def status_words(self) -> tuple[str, ...]:
        return tuple(self.rank)

    def order_key(self, event: CloudEvent, data: Data, status: str) -> str:
        return key(str(self.rank[status]), event.time_utc, event.id)


def _path(data: dict[str, Any], path: str) -> Any:
    """`data["a"]["b"]` for "a.b"; None where any step is missing or not an object."""
    value: Any = data
    for step in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value


def _field(data: BaseModel, name: str) -> Any:
    """A declared field or a kept unknown one (payloads keep fields their model does not declare)."""
    # Plain dict look-ups: asking pydantic for an absent attribute raises inside, at ten times the cost.
    if name in type(data).__pydantic_fields__:
        return getattr(data, name)
    extra = data.__pydantic_extra__
    return extra.get(name) if extra else None
