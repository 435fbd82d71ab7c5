"""One targeted test per fault kind, each naming the guarantee it protects (the property test mixes them).

Every AWS call of the core is numbered (tests/reliability/harness.py); a test places its fault on
the call that matters, found by name from a fault-free run, so it keeps working when the order of
calls changes.
"""

import json

import pytest

from sink_ops import redrive
from tests.reliability.harness import (
    STREAM_NAME,
    StreamDelivery,
    WebhookDelivery,
    on_failure_message,
    put_on_stream,
    redrive_args,
    run_all,
    world,  # noqa: F401 - the fixture
)
from tests.support import factories as f
from tests.support.expectations import unpublished


@pytest.fixture
def fresh(world):
    world.reset()
    world.faults.reset({}, {})
    return world


def calls_of(world, items, sink="kinesis") -> list[str]:
    """The names of the core's AWS calls for one fault-free delivery of `items` (then everything is reset)."""
    from twilio_sink import aws

    names: list[str] = []
    for service in ("dynamodb", "sns", "sqs"):
        aws.client(service).meta.events.register("before-call.*.*", lambda model, **_: names.append(model.name),
                                                 unique_id="calls-of")
    try:
        deliver(world, items, sink)
    finally:
        for service in ("dynamodb", "sns", "sqs"):
            aws.client(service).meta.events.unregister("before-call.*.*", unique_id="calls-of")
    world.reset()
    world.faults.reset({}, {})
    return names


def deliver(world, items, sink="kinesis"):
    if sink == "kinesis":
        delivery = StreamDelivery(world.consumer, world.context, put_on_stream(world.kinesis, STREAM_NAME, items),
                                  world.send_on_failure)
    else:
        delivery = WebhookDelivery(world.webhook, world.context, items)
    run_all(world.faults, [delivery])
    return delivery


def published(world) -> list[tuple[str, str]]:
    return [(n["id"], n["status"]) for n in world.stack.notifications()]


LIFECYCLE = [f.message("queued", seconds=0), f.message("sent", seconds=1)]
CRASH_POINTS = [(kind, operation) for operation in ("BatchGetItem", "PutItem", "PublishBatch", "BatchWriteItem")
                for kind in ("crash_before", "crash_after")]


@pytest.mark.parametrize("sink", ["kinesis", "webhook"])
@pytest.mark.parametrize(("kind", "operation"), CRASH_POINTS, ids=lambda v: v)
def test_a_crash_at_any_point_loses_no_change_and_leaves_no_unpublished_claim(fresh, sink, kind, operation):
    # Given the core's calls for a queued+sent delivery, and a crash (or Lambda timeout) at one of them
    names = calls_of(fresh, LIFECYCLE, sink)
    number = names.index(operation)
    fresh.faults.reset({number: kind}, {})
    # When Lambda (or Twilio) retries as it does after a function error
    deliver(fresh, LIFECYCLE, sink)
    # Then the crash happened, the final state is right, and both changes reached subscribers
    assert fresh.faults.fired, "the fault was not injected"
    state = fresh.stack.states()["message#MM1"]
    assert state["status"] == "sent" and unpublished(fresh.stack) == set()
    notes = published(fresh)
    assert set(notes) == {("MM1", "queued"), ("MM1", "sent")}
    # and only a crash between a publish and the history write that proves it (BatchWriteItem) may repeat one
    if (kind, operation) not in {("crash_after", "PublishBatch"), ("crash_before", "BatchWriteItem")}:
        assert len(notes) == 2, notes


@pytest.mark.parametrize("kind", ["throttle", "server_error", "timeout"])
@pytest.mark.parametrize("operation", ["BatchGetItem", "BatchWriteItem", "PutItem", "PublishBatch"])
def test_a_transient_aws_failure_is_retried_and_publishes_exactly_once(fresh, kind, operation):
    names = calls_of(fresh, LIFECYCLE)
    fresh.faults.reset({names.index(operation): kind}, {})
    deliver(fresh, LIFECYCLE)
    assert fresh.faults.fired
    assert fresh.stack.states()["message#MM1"]["status"] == "sent"
    assert sorted(published(fresh)) == [("MM1", "queued"), ("MM1", "sent")]


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("operation", ["BatchGetItem", "PutItem", "PublishBatch", "BatchWriteItem"])
def test_the_same_event_through_both_sinks_at_once_is_published_once(fresh, when, operation):
    # Given the stream consumer holding `queued`, and the webhook delivering it during any of its calls
    event = [f.message("queued")]
    names = calls_of(fresh, event)
    # A missing call means the pipeline changed shape: fail, so the overlap point is re-chosen, not lost.
    assert operation in names, f"the core no longer calls {operation} for a single new event: {names}"
    webhook = WebhookDelivery(fresh.webhook, fresh.context, event)
    stream = StreamDelivery(fresh.consumer, fresh.context, put_on_stream(fresh.kinesis, STREAM_NAME, event),
                            fresh.send_on_failure)
    fresh.faults.reset({}, {names.index(operation): (when, webhook)})
    run_all(fresh.faults, [stream, webhook])
    # Then the two invocations really overlapped, and one change made one notification
    assert fresh.faults.overlaps == [(stream, webhook)]
    assert published(fresh) == [("MM1", "queued")]
    assert unpublished(fresh.stack) == set()


def test_two_stream_batches_at_once_with_one_event_publish_it_once(fresh):
    # ParallelizationFactor > 1: Twilio wrote the event twice; the second batch runs between the
    # first batch's state write and its publish
    event = f.brand("brand-registered")
    names = calls_of(fresh, [event])
    first = StreamDelivery(fresh.consumer, fresh.context, put_on_stream(fresh.kinesis, STREAM_NAME, [event]),
                           fresh.send_on_failure)
    second = StreamDelivery(fresh.consumer, fresh.context, put_on_stream(fresh.kinesis, STREAM_NAME, [event]),
                            fresh.send_on_failure)
    fresh.faults.reset({}, {names.index("PutItem"): ("after", second)})
    run_all(fresh.faults, [first, second])
    assert fresh.faults.overlaps == [(first, second)]
    assert published(fresh) == [("BN1", "registered")]


def test_a_webhook_body_with_poison_answers_400_once_and_keeps_its_good_events(fresh):
    # Twilio drops a body answered 4xx for good: the good events in it must already be processed
    good = [f.message("queued"), f.brand("brand-registered")]
    bad = f.message("sent", message_id="MM-BAD", attempt="not a number")
    delivery = deliver(fresh, [good[0], bad, good[1]], sink="webhook")
    assert delivery.answers == [400]
    assert {pk: s["status"] for pk, s in fresh.stack.states().items()} == {"message#MM1": "queued",
                                                                           "brand#BN1": "registered"}
    assert sorted(published(fresh)) == [("BN1", "registered"), ("MM1", "queued")]
    assert [(d["reason"], d["event_id"]) for d in fresh.stack.dead_letters()] == [("invalid_payload", bad["id"])]


def test_a_webhook_body_with_poison_and_a_transient_failure_answers_503_so_twilio_retries(fresh):
    good, bad = f.message("queued"), f.message("sent", message_id="MM-BAD", attempt="not a number")
    names = calls_of(fresh, [good, bad], sink="webhook")
    fresh.faults.reset({names.index("PutItem"): "throttle"}, {})
    delivery = deliver(fresh, [good, bad], sink="webhook")
    assert delivery.answers == [503, 400]
    assert published(fresh) == [("MM1", "queued")]


def test_poison_never_fails_or_delays_its_neighbours(fresh):
    items = [f.message("queued", message_id="A"), b"\x80\x81", b"{no", f.message("queued", message_id="B")]
    delivery = deliver(fresh, items)
    assert delivery.exhausted == 0 and not fresh.faults.fired
    assert sorted(published(fresh)) == [("A", "queued"), ("B", "queued")]
    assert sorted(d["reason"] for d in fresh.stack.dead_letters()) == ["not_json", "undecodable"]


def test_exhausted_retries_go_to_on_failure_and_redrive_publishes_what_was_left_pending(fresh):
    # Given a batch that dies right after its state write, then at every call until Lambda gives up
    put = calls_of(fresh, LIFECYCLE).index("PutItem")
    fresh.faults.reset({put: "crash_after"} | {n: "crash_before" for n in range(put + 1, put + 50)}, {})
    delivery = deliver(fresh, LIFECYCLE)
    assert delivery.exhausted >= 1
    assert unpublished(fresh.stack) != set()  # written, never published
    before_redrive = published(fresh)
    # When an operator redrives the OnFailure metadata
    fresh.faults.active = False
    summary = redrive.redrive(fresh.resources, redrive_args(), out=open("/dev/null", "w"))  # noqa: SIM115
    # Then every change reached subscribers and nothing is left behind
    assert summary.kept == 0 and summary.redriven == delivery.exhausted
    assert set(before_redrive + published(fresh)) == {("MM1", "queued"), ("MM1", "sent")}
    assert unpublished(fresh.stack) == set()
    assert fresh.stack._drain(fresh.failure_queue) == []


def test_on_failure_message_is_metadata_only(fresh):
    records = put_on_stream(fresh.kinesis, STREAM_NAME, LIFECYCLE)
    info = json.loads(on_failure_message(records))["KinesisBatchInfo"]
    batch = redrive.FailedBatch.from_message(on_failure_message(records))
    assert (batch.start, batch.end, batch.size) == (info["startSequenceNumber"], info["endSequenceNumber"], 2)
    assert [r["kinesis"]["data"] for r in redrive.read_records(batch)] == [r["kinesis"]["data"] for r in records]
