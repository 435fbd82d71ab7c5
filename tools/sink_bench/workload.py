"""What the benchmark sends: the seed events, copied with fresh ids, as Kinesis batches and webhook bodies.

Each copy of the seed set (events/samples/cloudevents.json: full message lifecycles, a bulk-send
operation, A2P brand / campaign / number registrations, a sink test) gets its own entity and event
ids, so every copy is a new set of entities, in order, unique: every event is an applied change.
"""

import json
import random
from functools import cache

from sink_dev.samples import kinesis_event, load_samples, webhook_body, webhook_event

ID_FIELDS = ("message_id", "operation_id", "brandsid", "campaignsid", "phonenumbersid", "test_id")
A2P = "com.twilio.messaging.compliance."
SINK_TEST = "com.twilio.eventstreams.test-event"
SEED_TYPES = {
    *(f"com.twilio.comms-api.message.{s}" for s in ("queued", "sent", "delivered", "undelivered", "failed", "read",
                                                    "inbound-received")),
    *(f"com.twilio.comms-api.operation.{s}" for s in ("scheduled", "processing", "completed")),
    *(f"{A2P}brand-registration.brand-{s}" for s in ("unverified", "registered", "failure")),
    *(f"{A2P}campaign-registration.campaign-{s}" for s in ("submitted", "approved", "failure")),
    *(f"{A2P}{kind}.{s}" for kind in ("number-registration", "number-deregistration")
      for s in ("pending", "successful", "failed")),
    SINK_TEST,
}


@cache
def _seeds() -> tuple[str, ...]:
    # Samples of the seed documents' types: the mix the README's figures were measured with, whose
    # entity ids `_copy` knows how to make unique (other families' copies would be duplicates).
    return tuple(json.dumps(sample) for sample in load_samples() if sample["type"] in SEED_TYPES)


def _copy(sample_json: str, copy: int, run: str) -> dict:
    event = json.loads(sample_json)
    suffix = f"{run}{copy:06d}"
    # A sink test event's id is its Account SID (Twilio's shape, and how it names its account): its
    # test_id alone makes it new.
    if event["type"] != SINK_TEST:
        event["id"] = f"{event['id'][:-len(suffix)]}{suffix}"
    for name in ID_FIELDS:
        if name in event["data"]:
            event["data"][name] = f"{event['data'][name]}-{suffix}"
    return event


def mixed_events(count: int, run: str = "a") -> list[dict]:
    """`count` CloudEvents: copies of the seed set, in order, with ids unique to `run` and copy."""
    seeds = _seeds()
    return [_copy(seeds[i % len(seeds)], i // len(seeds), run) for i in range(count)]


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


# ---- the cost workload: lifecycles spread over time, as Twilio sends them ----------------------

# Seconds after the first event: `queued` and `sent` come together, the outcome seconds later, `read`
# (for some messages) a minute later; A2P registrations move over minutes.
MESSAGE_STEPS = (("queued", 0.0), ("sent", 0.2), ("outcome", 4.0), ("read", 60.0))
OUTCOMES = (("delivered", 0.90), ("undelivered", 0.05), ("failed", 0.05))
A2P_LIFECYCLES = (("brand-registration", ("brand-unverified", "brand-registered")),
                  ("campaign-registration", ("campaign-submitted", "campaign-approved")),
                  ("number-registration", ("pending", "successful")))


@cache
def _seed_by_kind() -> dict[str, str]:
    """Seed event JSON by the last two parts of its type (`message.sent`, `brand-registration.brand-failure` …)."""
    seeds: dict[str, str] = {}
    for sample in load_samples():
        seeds.setdefault(".".join(sample["type"].split(".")[-2:]), json.dumps(sample))
    return seeds


def _event(kind: str, entity: int, step: int, at: float, run: str) -> dict:
    event = _copy(_seed_by_kind()[kind], entity, f"{run}{step}")
    for name in ID_FIELDS:  # one id per entity whichever seed an event comes from, as long as Twilio's SIDs
        if name in event["data"]:
            event["data"][name] = f"{event['data'][name][:2]}{run}{entity:031d}"
    seconds = int(at)
    event["time"] = f"2026-01-01T{seconds // 3600 % 24:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{int(at % 1 * 1000):03d}Z"
    return event


def lifecycles(entities: int, rate: float, run: str = "c", a2p_share: float = 0.10, read_share: float = 0.30,
               seed: int = 7) -> list[dict]:
    """Events of `entities` entities in arrival (time) order, `rate` new entities a second.

    Messages (1 - `a2p_share` of the entities): queued and sent together, an outcome seconds later,
    read a minute later for `read_share` of them; A2P registrations: two events minutes apart. Cut
    into batches in this order, a lifecycle's events land in several batches, as on a real stream.
    """
    rng = random.Random(seed)
    timed: list[tuple[float, dict]] = []
    for entity in range(entities):
        start = entity / rate
        if rng.random() < a2p_share:
            family, kinds = rng.choice(A2P_LIFECYCLES)
            for step, kind in enumerate(kinds):
                at = start + step * rng.uniform(60, 600)
                timed.append((at, _event(f"{family}.{kind}", entity, step, at, run)))
            continue
        outcome = rng.choices([name for name, _ in OUTCOMES], [share for _, share in OUTCOMES])[0]
        for step, (status, delay) in enumerate(MESSAGE_STEPS):
            if status == "read" and (outcome != "delivered" or rng.random() >= read_share):
                continue
            at = start + delay * rng.uniform(0.5, 1.5)
            timed.append((at, _event(f"message.{outcome if status == 'outcome' else status}", entity, step, at, run)))
    return [event for _, event in sorted(timed, key=lambda pair: pair[0])]


def webhook_bodies(events: list[dict], max_bytes: int = 64_000, max_events: int = 100) -> list[str]:
    """Bodies as Twilio's webhook sink batches events: in order, up to `max_bytes` (and `max_events`)."""
    bodies, current = [], []
    for event in events:
        if current and (len(current) == max_events or len(webhook_body(current + [event])) > max_bytes):
            bodies.append(webhook_body(current))
            current = []
        current.append(event)
    if current:
        bodies.append(webhook_body(current))
    return bodies


def stream_batches(events: list[dict], window_seconds: float = 1.0, max_records: int = 1000) -> list[list[dict]]:
    """Batches as Lambda gathers them from a shard: a batching window of arrivals, at most `max_records`."""
    batches: list[list[dict]] = []
    opened = None
    for event in events:
        at = _seconds(event["time"])
        if not batches or len(batches[-1]) == max_records or at - opened >= window_seconds:
            batches.append([])
            opened = at
        batches[-1].append(event)
    return batches


def _seconds(time: str) -> float:
    clock = time[11:-1]
    hours, minutes, seconds = clock.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
