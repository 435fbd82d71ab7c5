"""What every family declares; the registry, the set-up and status commands and the docs need nothing else."""

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, ValidatorFunctionWrapHandler, model_validator

from ..envelope import CloudEvent
from ..order_keys import key
from ..sids import ACCOUNT_SID, NOT_AN_ACCOUNT_SID, SOURCE_ACCOUNT
from ..times import parse_timestamp


class Places:
    """Marks a payload field that places the event (its entity, status or order), with why.

    Such a field, when present, must be readable: the event is refused (`invalid_payload`) otherwise.
    """

    def __init__(self, why: str):
        self.why = why


class Payload(BaseModel):
    """A family's payload model. Tolerant reader: only the fields that place the event are checked.

    Declared fields without `Places` are read when readable and otherwise ignored (as if absent): the
    event's `data` is stored and published verbatim whatever the model reads of it, so a field Twilio
    sends in another shape than its documents say costs nothing.
    """

    model_config = ConfigDict(extra="allow", defer_build=True)
    # Dotted paths of which one is required, when no single field is (a call's SID has two homes).
    one_of: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def placing(cls) -> dict[str, tuple[str, bool]]:
        """`{payload key: (why, required)}` for every field that places the event."""
        return {field.alias or name: (why.why, field.is_required())
                for name, field in cls.model_fields.items() for why in field.metadata if isinstance(why, Places)}

    @model_validator(mode="wrap")
    @classmethod
    def _unreadable_extras_ignored(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError as error:
            placing = cls.placing()
            aliases = {field.alias or name for name, field in cls.model_fields.items()}
            ignored = {str(problem["loc"][0]) for problem in error.errors()
                       if problem["loc"] and problem["loc"][0] in aliases and problem["loc"][0] not in placing}
            if not ignored or not isinstance(value, dict):
                raise
            # Again without them: what is left to refuse names only the fields that place the event.
            return handler({name: field for name, field in value.items() if name not in ignored})


@dataclass(frozen=True)
class EventType:
    """One event type: the status it sets and the schema Twilio describes its payload with."""

    status: str
    # Twilio's schema name as in `dataschema` (`CommsApi.MessageQueued`). A name ending in "." is a
    # namespace (`TollFree.`): the exact name is not confirmed by Twilio's docs, only its prefix.
    schema: str
    versions: tuple[int, ...]  # the versions this family is known to read; others are counted, not refused
    # Other names Twilio's documents give the same type's schema (they disagree): listed, so not counted.
    aliases: tuple[str, ...] = ()

    def lists(self, schema: str, version: int) -> bool:
        """Whether `dataschema`'s name and version are ones this type is documented with (never a refusal)."""
        if self.schema.endswith("."):  # only the namespace is documented
            return schema.startswith(self.schema) and version in self.versions
        return schema in (self.schema, *self.aliases) and version in self.versions

    @property
    def latest(self) -> int:
        return max(self.versions)


def event_types(prefix: str, statuses: Mapping[str, str], schema: str | Mapping[str, str],
                versions: Iterable[int], aliases: Iterable[str] = ()) -> dict[str, EventType]:
    """`{prefix + suffix: EventType}` for `{suffix: status}`; `schema` one name or one per suffix."""
    declared = tuple(versions)
    return {prefix + suffix: EventType(status, schema if isinstance(schema, str) else schema[suffix], declared,
                                       tuple(aliases))
            for suffix, status in statuses.items()}


class Family[Data: Payload](ABC):
    name: str  # how operators name the family (`twilio-sink connect --families`, the docs' table)
    entity: str
    id_source: str  # where the entity id comes from, in words (for the docs and the status command)
    types: Mapping[str, EventType]
    data_model: type[Data]
    # Reconciliation against Twilio's REST API (the reconcile package, whose resources.py says what is
    # asked and how a correction reads): the statuses after which Twilio changes nothing more, and how
    # long any other status may stay unchanged (quiet) before Twilio is asked for the truth. None:
    # Twilio has no REST resource to ask, the family is not reconciled.
    final: frozenset[str] = frozenset()
    quiet_after: timedelta | None = None
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
        # Every `/Accounts/…` segment: a source naming two accounts names two.
        return self._payload_accounts(event.data) + [
            sid if ACCOUNT_SID.fullmatch(sid) else NOT_AN_ACCOUNT_SID for sid in SOURCE_ACCOUNT.findall(event.source)]

    def payload_account(self, data: dict[str, Any]) -> str | None:
        """The first Account SID the payload's account fields name (a stored payload has no `source`)."""
        return next((name for name in self._payload_accounts(data) if name != NOT_AN_ACCOUNT_SID), None)

    def _payload_accounts(self, data: dict[str, Any]) -> list[str]:
        """What each account field present in `data` names, in `account_fields` order."""
        return [value if isinstance(value, str) and ACCOUNT_SID.fullmatch(value) else NOT_AN_ACCOUNT_SID
                for path in self.account_fields if (value := _path(data, path)) is not None]

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

    def recheck_after(self, status: str) -> timedelta | None:
        """How long `status` may stay unchanged before reconciliation asks Twilio (None: never)."""
        return None if status in self.final else self.quiet_after

    @abstractmethod
    def order_key(self, event: CloudEvent, data: Data, status: str) -> str:
        """Text that sorts in precedence order; must end with the event id for a total order."""


class Ranked[Data: Payload](Family[Data]):
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


def _field(data: Payload, name: str) -> Any:
    """A declared field or a kept unknown one (payloads keep fields their model does not declare)."""
    # Plain dict look-ups: asking pydantic for an absent attribute raises inside, at ten times the cost.
    if name in type(data).__pydantic_fields__:
        return getattr(data, name)
    extra = data.__pydantic_extra__
    return extra.get(name) if extra else None
