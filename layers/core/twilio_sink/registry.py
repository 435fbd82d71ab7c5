"""The one list of event families; every event type is routed from here.

Adding a family is one module under `families/` and one line below.
"""

from pydantic import ValidationError

from .envelope import CloudEvent, Poison, PoisonReason, describe
from .families.base import Family
from .families.brands import Brands
from .families.campaigns import Campaigns
from .families.messages import Messages
from .families.operations import Operations
from .families.phone_numbers import PhoneNumbers
from .families.sink_test import SinkTests
from .lifecycle import Change

FAMILIES: tuple[Family, ...] = (Messages(), Operations(), Brands(), Campaigns(), PhoneNumbers(), SinkTests())

BY_TYPE: dict[str, Family] = {event_type: family for family in FAMILIES for event_type in family.statuses}


def known_types() -> list[str]:
    return sorted(BY_TYPE)


def route(event: CloudEvent) -> Change:
    """Validate the payload for its type and say which entity it moves to which status."""
    family = BY_TYPE.get(event.type)
    if family is None:
        # The type is the dead letter's `event_type`; not repeated here, where it would be logged.
        raise Poison(PoisonReason.UNKNOWN_TYPE, "no handler for this event type (see event_type)")
    try:
        data = family.data_model.model_validate(event.data)
    except ValidationError as error:
        raise Poison(PoisonReason.INVALID_PAYLOAD, f"{event.type}: {describe(error)}") from None
    status = family.statuses[event.type]
    return Change(
        entity=family.entity,
        entity_id=family.entity_id(data),
        status=status,
        order_key=family.order_key(event, data, status),
        event=event,
        indexed=family.indexed(data),
        recheck_after=family.recheck_after(status),
    )
