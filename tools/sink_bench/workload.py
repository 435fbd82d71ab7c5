"""What the benchmark sends: the seed events, copied with fresh ids, as Kinesis batches and webhook bodies.

Each copy of the seed set (events/samples/cloudevents.json: full message lifecycles, a bulk-send
operation, A2P brand / campaign / number registrations, a sink test) gets its own entity and event
ids, so every copy is a new set of entities, in order, unique: every event is an applied change.
"""

import json
from functools import cache

from sink_dev.samples import kinesis_event, load_samples, webhook_body, webhook_event

ID_FIELDS = ("message_id", "operation_id", "brandsid", "campaignsid", "phonenumbersid", "test_id")
A2P = "com.twilio.messaging.compliance."
SEED_TYPES = {
    *(f"com.twilio.comms-api.message.{s}" for s in ("queued", "sent", "delivered", "undelivered", "failed", "read",
                                                    "inbound-received")),
    *(f"com.twilio.comms-api.operation.{s}" for s in ("scheduled", "processing", "completed")),
    *(f"{A2P}brand-registration.brand-{s}" for s in ("unverified", "registered", "failure")),
    *(f"{A2P}campaign-registration.campaign-{s}" for s in ("submitted", "approved", "failure")),
    *(f"{A2P}{kind}.{s}" for kind in ("number-registration", "number-deregistration")
      for s in ("pending", "successful", "failed")),
    "com.twilio.eventstreams.test-event",
}


@cache
def _seeds() -> tuple[str, ...]:
    # Samples of the seed documents' types: the mix the README's figures were measured with, whose
    # entity ids `_copy` knows how to make unique (other families' copies would be duplicates).
    return tuple(json.dumps(sample) for sample in load_samples() if sample["type"] in SEED_TYPES)


def _copy(sample_json: str, copy: int, run: str) -> dict:
    event = json.loads(sample_json)
    suffix = f"{run}{copy:06d}"
    event["id"] = f"{event['id'][:-len(suffix)]}{suffix}"
    for name in ID_FIELDS:
        if name in event["data"]:
            event["data"][name] = f"{event['data'][name]}-{suffix}"
    return event


def mixed_events(count: int, run: str = "a") -> list[dict]:
    """`count` CloudEvents: copies of the seed set, in order, with ids unique to `run` and copy."""
    seeds = _seeds()
    return [_copy(seeds[i % len(seeds)], i // len(seeds), run) for i in range(count)]


def expected_entities(events: list[dict]) -> int:
    return len({(e["type"].split(".")[-2], next(e["data"][n] for n in ID_FIELDS if n in e["data"])) for e in events})


def kinesis_batch(count: int, run: str = "a") -> dict:
    return kinesis_event(mixed_events(count, run))


def webhook_delivery(size_bytes: int, run: str) -> tuple[dict, int]:
    """A signed webhook event whose body (a JSON array of CloudEvents) is about `size_bytes`; and its event count."""
    events: list[dict] = []
    copy = 0
    while len(webhook_body(events)) < size_bytes:
        events.extend(mixed_events(len(_seeds()), f"{run}{copy}"))
        copy += 1
    while len(webhook_body(events)) > size_bytes:
        events.pop()
    return webhook_event(webhook_body(events)), len(events)
