"""Seed 000 (the Communications API events): every type with the `Event schema` it prints.

The seed prints each payload's JSON Schema, not a delivery: every schema says `"required": []`, and
only `message.queued` has an `account_sid` property. No public source shows the `source` Twilio puts
on these events, so the events built here name no account anywhere: the shape the sink must still
apply (on the webhook under the account whose token signed the delivery).
"""

# (type, schema `$id` as printed, the payload's id field)
TYPES = [
    ("com.twilio.comms-api.operation.processing", "https://events-schemas.twilio.com/CommsApi.OperationProcessing/2",
     "operation_id"),
    ("com.twilio.comms-api.operation.completed", "https://events-schemas.twilio.com/CommsApi.OperationCompleted/2",
     "operation_id"),
    ("com.twilio.comms-api.operation.scheduled", "https://events-schemas.twilio.com/CommsApi.OperationScheduled/2",
     "operation_id"),
    ("com.twilio.comms-api.message.queued", "https://events-schemas.twilio.com/CommsApi.MessageQueued/3", "message_id"),
    ("com.twilio.comms-api.message.sent", "https://events-schemas.twilio.com/CommsApi.MessageSent/4", "message_id"),
    ("com.twilio.comms-api.message.failed", "https://events-schemas.twilio.com/CommsApi.MessageFailed/4", "message_id"),
    ("com.twilio.comms-api.message.delivered", "https://events-schemas.twilio.com/CommsApi.MessageDelivered/4",
     "message_id"),
    ("com.twilio.comms-api.message.undelivered", "https://events-schemas.twilio.com/CommsApi.MessageUndelivered/4",
     "message_id"),
    ("com.twilio.comms-api.message.read", "https://events-schemas.twilio.com/CommsApi.MessageRead/4", "message_id"),
    ("com.twilio.comms-api.message.inbound-received", "https://events-schemas.twilio.com/CommsApi.MessageInbound/2",
     "message_id"),
]


def event(event_type: str, schema: str, id_field: str) -> dict:
    """A delivery of `event_type` whose payload holds only its id, and whose source names no account."""
    entity_id = ("MM" if id_field == "message_id" else "OP") + "5" * 32
    return {
        "specversion": "1.0",
        "type": event_type,
        "source": "/v1/comms-api",
        "id": "EV" + event_type.rsplit(".", 1)[1].replace("-", "")[:10].ljust(30, "0"),
        "dataschema": schema,
        "datacontenttype": "application/json",
        "time": "2025-06-16T17:00:57.563Z",
        "data": {id_field: entity_id},
    }
