"""Small builders of CloudEvents for tests that need variations the samples do not have."""

import itertools
from datetime import UTC, datetime, timedelta

from sink_dev.samples import SAMPLE_ACCOUNT_SID
from twilio_sink.notify import Notification, notification
from twilio_sink.precedence import Plan
from twilio_sink.registry import BY_TYPE, dataschema
from twilio_sink.state import EntityState, Recorded

_ids = itertools.count(1)
BASE_TIME = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)

MESSAGE = "com.twilio.comms-api.message."
OPERATION = "com.twilio.comms-api.operation."
A2P = "com.twilio.messaging.compliance."


def at(seconds: float) -> str:
    return (BASE_TIME + timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def cloudevent(event_type: str, data: dict, seconds: float = 0, event_id: str | None = None) -> dict:
    event = {
        "specversion": "1.0",
        "type": event_type,
        "source": f"/2010-04-01/Accounts/{SAMPLE_ACCOUNT_SID}/tests",
        "id": event_id or f"EZ{next(_ids):032x}",
        # The schema Twilio names for a known type (a known type naming another schema is refused);
        # none for a type whose family knows only the schema's namespace.
        "dataschema": dataschema(event_type) or "https://events-schemas.twilio.com/Test/1",
        "datacontenttype": "application/json",
        "time": at(seconds),
        "data": data,
    }
    if event_type in BY_TYPE and dataschema(event_type) is None:
        del event["dataschema"]
    return event


def message(status: str, message_id: str = "MM1", seconds: float = 0, attempt: str | None = "1", **data) -> dict:
    payload = {"message_id": message_id, **data}
    if attempt is not None:
        payload["attempt"] = attempt
    return cloudevent(MESSAGE + status, payload, seconds)


def operation(status: str, operation_id: str = "OP1", seconds: float = 0) -> dict:
    return cloudevent(OPERATION + status, {"operation_id": operation_id}, seconds)


def brand(kind: str, brandsid: str = "BN1", seconds: float = 0, updateddate: int = 0) -> dict:
    return cloudevent(A2P + "brand-registration." + kind, {"brandsid": brandsid, "updateddate": updateddate}, seconds)


def phone_number(kind: str, phonenumbersid: str = "PN1", seconds: float = 0) -> dict:
    return cloudevent(A2P + kind, {"phonenumbersid": phonenumbersid, "phonenumber": "+15555550100"}, seconds)


def stored(status: str, order_key: str, version: int, claims: dict | None = None) -> EntityState:
    """A stored state as the precedence rules see it: its status, order key, version and claims."""
    winner = Recorded("message", "MM-stored", status, "com.twilio.messaging.message.sent", "stored-event",
                      "2025-01-01T00:00:00.000000Z", "{}")
    return EntityState(winner, order_key, version, claims=claims or {})


def notices(result: Plan) -> list[Notification]:
    """The notifications a plan's write is to publish, in order."""
    return [notification(change, previous) for change, previous in result.to_publish]
