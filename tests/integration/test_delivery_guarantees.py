"""Property test of the delivery guarantees under duplicates, any order, batch splits and faults.

Hypothesis generates event histories (several entities' lifecycles, each event delivered 1-3 times,
shuffled, split into Kinesis batches and webhook bodies, poison records mixed in) and a fault plan
(AWS calls that fail with throttling, and crashes: an exception escaping the handler after the state
was written and before its notifications were published). The real handlers run against moto while
the test plays Lambda (retry from the lowest failed sequence number; on a crash, retry the batch
split in halves) and Twilio (retry the whole body on 5xx or a crash). A simple model then checks:
- every entity's final status is the one its highest-precedence event sets;
- every change the store applied was published at least once, in precedence order per entity;
- without faults, nothing was published twice;
- every poison record is a dead letter; the outbox is empty at the end.
"""

import itertools
import json
import os
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from scripts.generate_events import LOCAL_TEST_AUTH_TOKEN
from scripts.local_aws import LambdaContext, Stack
from tests.support import factories as f
from tests.support.sinks import kinesis_batch, post

LIFECYCLE_RANK = {"queued": 0, "sent": 1, "delivered": 2, "undelivered": 2, "failed": 2, "read": 3}
BRAND_KINDS = {"brand-unverified": "unverified", "brand-registered": "registered", "brand-failure": "failed"}
POISON = [b"\x80not utf8", b"{broken", json.dumps(f.cloudevent("com.twilio.unknown", {})).encode()]
FAULTY_CALLS = ["batch_get_item", "put_item", "update_item", "batch_write_item", "publish_batch",
                "send_message_batch"]
MAX_DELIVERY_ATTEMPTS = 12


class Crash(Exception):
    """Stands for the function dying (timeout, out of memory) at that point."""


# ---- the model: precedence computed independently of the code under test ---------------------

def precedence(event: dict) -> tuple:
    kind = event["type"].rsplit(".", 1)[-1]
    if event["type"].startswith(f.MESSAGE):
        return (int(event["data"]["attempt"]), LIFECYCLE_RANK[kind], event["time"], event["id"])
    return (event["time"], event["data"]["updateddate"], 0, event["id"])


def entity_key(event: dict) -> str:
    data = event["data"]
    return f"message#{data['message_id']}" if "message_id" in data else f"brand#{data['brandsid']}"


def status_of(event: dict) -> str:
    kind = event["type"].rsplit(".", 1)[-1]
    return kind if event["type"].startswith(f.MESSAGE) else BRAND_KINDS[kind]


# ---- strategies --------------------------------------------------------------------------------

@st.composite
def events(draw):
    out = []
    for n in range(draw(st.integers(1, 2))):
        for status in draw(st.lists(st.sampled_from(sorted(LIFECYCLE_RANK)), min_size=1, max_size=4, unique=True)):
            out.append(f.message(status, message_id=f"MM{n}", attempt=str(draw(st.integers(1, 2))),
                                 seconds=draw(st.integers(0, 3))))
    for kind in draw(st.lists(st.sampled_from(sorted(BRAND_KINDS)), max_size=3, unique=True)):
        out.append(f.brand(kind, seconds=draw(st.integers(0, 3)), updateddate=draw(st.integers(0, 2))))
    return out


@st.composite
def histories(draw):
    originals = draw(events())
    copies = [e for e in originals for _ in range(draw(st.integers(1, 3)))]
    poison = draw(st.lists(st.sampled_from(POISON), max_size=2))
    arrivals = draw(st.permutations(copies + poison))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(arrivals) - 1)), max_size=3)))
    deliveries = [arrivals[a:b] for a, b in itertools.pairwise([0, *cuts, len(arrivals)]) if arrivals[a:b]]
    sinks = [draw(st.sampled_from(["kinesis", "webhook"])) for _ in deliveries]
    faults = draw(st.dictionaries(st.sampled_from(FAULTY_CALLS), st.sets(st.integers(0, 6), max_size=2),
                                  max_size=3))
    crash_at = draw(st.one_of(st.none(), st.integers(0, 4)))
    return originals, list(zip(sinks, deliveries)), faults, crash_at


# ---- the harness ------------------------------------------------------------------------------

@dataclass
class Faults:
    plan: dict[str, set[int]]
    crash_at: int | None
    calls: dict[str, int] = field(default_factory=dict)
    fired: int = 0

    def wrap(self, client, operation: str):
        real = getattr(client, operation)

        def call(*args, **kwargs):
            from botocore.exceptions import ClientError

            number = self.calls.get(operation, 0)
            self.calls[operation] = number + 1
            if number in self.plan.get(operation, ()):
                self.fired += 1
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "injected"}}, operation)
            if operation == "publish_batch" and self.crash_at is not None and self.calls[operation] - 1 == self.crash_at:
                self.fired += 1
                raise Crash("died after the write, before the publish")
            return real(*args, **kwargs)

        setattr(client, operation, call)


def deliver_kinesis(consumer, context, items, first_sequence):
    """Lambda's rules: retry from the lowest failed record; on a function error, bisect."""
    queue = [items]
    attempts = 0
    while queue:
        batch = queue.pop(0)
        attempts += 1
        assert attempts < MAX_DELIVERY_ATTEMPTS * 4, "a batch never succeeded"
        event = kinesis_batch(batch, first_sequence)
        try:
            response = consumer.lambda_handler(event, context)
        except Exception:  # noqa: BLE001 - a crash or an all-failed batch: Lambda retries, bisecting
            half = max(1, len(batch) // 2)
            queue[:0] = [batch[:half], batch[half:]] if len(batch) > 1 else [batch]
            continue
        failed = [r["itemIdentifier"] for r in response["batchItemFailures"]]
        if failed:
            sequences = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
            lowest = min(sequences.index(s) for s in failed)
            queue.insert(0, batch[lowest:])


def deliver_webhook(webhook, context, items):
    """Twilio's rules: 5xx (or no answer) retries the whole body; 200 and other 4xx end it."""
    body = [json.loads(i) if isinstance(i, bytes) and _is_json(i) else (i if isinstance(i, dict) else None)
            for i in items]
    body = [b for b in body if b is not None]
    for _ in range(MAX_DELIVERY_ATTEMPTS):
        try:
            status, _ = post(webhook, context, body)
        except Exception:  # noqa: BLE001 - the function died: API Gateway answers 502, Twilio retries
            continue
        if status < 500:
            return
    raise AssertionError("a webhook delivery never succeeded")


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
        return True
    except ValueError:
        return False


@settings(max_examples=int(os.environ.get("GUARANTEE_EXAMPLES", "150")), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(history=histories())
def test_guarantees_hold_for_any_history(consumer, webhook, history):
    originals, deliveries, fault_plan, crash_at = history
    from twilio_sink import aws, config, pipeline

    with mock_aws():
        stack = Stack(LOCAL_TEST_AUTH_TOKEN)
        os.environ.update(stack.env)
        aws.reset_clients()
        config.settings.cache_clear()
        pipeline.default_pipeline.cache_clear()
        faults = Faults(fault_plan, crash_at)
        for service, operations in {"dynamodb": FAULTY_CALLS[:4], "sns": ["publish_batch"],
                                    "sqs": ["send_message_batch"]}.items():
            for operation in operations:
                faults.wrap(aws.client(service), operation)
        applied = record_applied_changes(pipeline.default_pipeline().store)
        context = LambdaContext()

        for number, (sink, items) in enumerate(deliveries):
            if sink == "kinesis":
                deliver_kinesis(consumer, context, items, first_sequence=1000 * (number + 1))
            else:
                deliver_webhook(webhook, context, items)

        states, notes, letters = stack.states(), stack.notifications(), stack.dead_letters()
    check(originals, deliveries, states, notes, letters, applied, faulty=faults.fired > 0)


def record_applied_changes(store) -> list[str]:
    """Event ids of every change the store accepted (from its outbox entries), in write order."""
    applied: list[str] = []
    real = store.save_state

    def save_state(pk, attributes, order_key, expected_version, new_pending):
        version = real(pk, attributes, order_key, expected_version, new_pending)
        applied.extend(json.loads(body)["event_id"] for body in new_pending.values())
        return version

    store.save_state = save_state
    return applied


def check(originals, deliveries, states, notes, letters, applied, faulty):
    by_entity: dict[str, list[dict]] = {}
    for event in originals:
        by_entity.setdefault(entity_key(event), []).append(event)
    # 1. the final status is the model's winner, whatever the interleaving
    assert set(states) == set(by_entity)
    for pk, events_of_entity in by_entity.items():
        winner = max(events_of_entity, key=precedence)
        assert states[pk]["event_id"] == winner["id"], pk
        assert states[pk]["status"] == status_of(winner), pk
        assert states[pk]["pending"] == {} or faulty, pk
    # 2. every applied change was published at least once; the winner last of all
    published = [n["event_id"] for n in notes]
    assert set(applied) <= set(published)
    originals_by_id = {e["id"]: e for e in originals}
    for pk in by_entity:
        sequence = [n["event_id"] for n in notes if f"{n['entity']}#{n['id']}" == pk]
        assert states[pk]["event_id"] in sequence, pk
        if not faulty:
            # 3. without faults: in precedence order, each change exactly once
            keys = [precedence(originals_by_id[i]) for i in sequence]
            assert keys == sorted(keys) and len(set(keys)) == len(keys), pk
    if not faulty:
        assert sorted(published) == sorted(applied), "a notification was published twice or without a change"
    # 4. every poison record is a dead letter (retries may send one twice: the set is what counts)
    expected_letters = sum(
        1 for sink, items in deliveries for item in items
        if isinstance(item, bytes) and (sink == "kinesis" or _is_json(item))
    )
    assert len(letters) >= expected_letters
    assert {letter["reason"] for letter in letters} <= {"undecodable", "not_json", "unknown_type"}
