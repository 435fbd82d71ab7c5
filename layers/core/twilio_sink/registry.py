"""The one list of event families; every event type is routed from here.

Adding a family is one module under `families/` and one line in `FAMILIES`. A type no family
declares goes to the catch-all (`families/unmodelled.py`): kept as entity `event`, never dead-lettered.
Whatever a payload holds, routing it either returns a `Change` or raises `Poison`: nothing else escapes.
"""

import re

from pydantic import ValidationError

from .envelope import CloudEvent, describe
from .families.base import EventType, Family
from .families.brands import Brands
from .families.call_summaries import CallSummaries
from .families.calls import Calls
from .families.campaigns import Campaigns
from .families.handshake import SinkTests
from .families.inbound_messages import InboundMessages
from .families.message_status import MessageStatuses
from .families.messages import Messages
from .families.operations import Operations
from .families.phone_numbers import PhoneNumbers
from .families.studio import FlowExecutions
from .families.tollfree import TollFreeVerifications
from .families.unmodelled import Unmodelled
from .families.verifications import Verifications
from .families.verify_messages import VerifyMessages
from .observability import count
from .poison import Poison, PoisonReason
from .precedence import Change

# Every payload model is `defer_build`: its validator is built when its family's first event arrives,
# not at each cold start for families a sink may never receive (pydantic serialises those builds).
FAMILIES: tuple[Family, ...] = (
    Messages(), MessageStatuses(), InboundMessages(), Operations(), Brands(), Campaigns(), PhoneNumbers(),
    TollFreeVerifications(), Calls(), CallSummaries(), FlowExecutions(), Verifications(), VerifyMessages(),
    SinkTests(),
)
UNMODELLED = Unmodelled()

BY_TYPE: dict[str, Family] = {event_type: family for family in FAMILIES for event_type in family.types}
# What a metric dimension may hold: an arbitrary `type` must not mint unreadable dimensions.
DIMENSION = re.compile(r"[A-Za-z0-9._:/-]{1,200}")


def known_types() -> list[str]:
    return sorted(BY_TYPE)


def family_of(event_type: str) -> Family:
    return BY_TYPE.get(event_type, UNMODELLED)


def dataschema(event_type: str, version: int | None = None) -> str | None:
    """The `dataschema` URL Twilio uses for a known type (its latest declared version by default)."""
    family = BY_TYPE.get(event_type)
    declared = family.types[event_type] if family else None
    if declared is None or declared.schema.endswith("."):
        return None
    return f"https://events-schemas.twilio.com/{declared.schema}/{version or declared.latest}"


def accounts_named(event: CloudEvent) -> list[str]:
    """Every account an event names, as its family reads them (the allow-list's question); never raises.

    Asked before routing: the raw payload is read, so a payload its family's model refuses still
    names its accounts.
    """
    return family_of(event.type).accounts_named(event)


def route(event: CloudEvent, account: str | None = None) -> Change:
    """Validate the payload for its type and say which entity it moves to which status.

    `account`: the account the event was admitted for (accounts.AccountRule), when it names none itself.
    """
    family = family_of(event.type)
    # A known type is one of ours, safe to name; an unmodelled one is the dead letter's `event_type`.
    label = event.type if family is not UNMODELLED else "data"
    try:
        change = _route(family, event, account)
    except Poison:
        raise
    except ValidationError as error:
        raise Poison(PoisonReason.INVALID_PAYLOAD, f"{label}: {describe(error)}") from None
    except Exception as error:
        # A payload no family foresaw must cost one dead letter, never its batch (contract 4). The
        # message of `error` may quote the payload: only its type is named.
        raise Poison(PoisonReason.INVALID_PAYLOAD, f"{label}: unreadable payload ({type(error).__name__})") from None
    if family is UNMODELLED:
        count("EventsUnmodelled", event_type=event.type if DIMENSION.fullmatch(event.type) else "(malformed)")
    else:
        unlisted = _unlisted_schema(event, family.types[event.type])
        if unlisted:
            count("SchemasUnlisted", event_type=event.type, schema=unlisted)
    return change


def _route(family: Family, event: CloudEvent, account: str | None) -> Change:
    data = family.data_model.model_validate(event.data)
    if event.time is None:
        moment = family.event_time(data)
        if moment is None:
            fields = ", ".join(family.time_fields) or "none"
            raise Poison(PoisonReason.INVALID_PAYLOAD, f"time: missing, and no timestamp in data (read: {fields})")
        event = event.model_copy(update={"time": moment})
    status = family.status(event.type, data)
    # Admitted events carry the account their admission read (accounts.AccountRule): not read again.
    account = account or family.account_sid(event)
    return Change(
        entity=family.entity,
        entity_id=family.entity_id(event, data),
        status=status,
        order_key=family.order_key(event, data, status),
        event=event,
        account_sid=account,
        indexed=family.indexed(data) | ({"account_sid": account} if account else {}),
        recheck_after=family.recheck_after(status),
    )


def _unlisted_schema(event: CloudEvent, declared: EventType) -> str | None:
    """`name/version` when `dataschema` names a schema the type is not documented with, else None.

    Information, never a refusal: Twilio's documents disagree on these names and versions move, while
    the `type` alone routes. The host is not looked at (Twilio's examples use several).
    """
    if event.dataschema is None:
        return None
    named = event.named_schema
    if named is None:
        return "(unreadable)"
    name, version = named
    if declared.lists(name, version):
        return None
    seen = f"{name}/{version}"
    return seen if DIMENSION.fullmatch(seen) else "(malformed)"
