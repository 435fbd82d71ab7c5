"""NotificationTopicFifo: on a FIFO topic a change republished after a crash reaches subscribers once,
and each entity's changes arrive in order, in their own message group.

The stack is the template's with NotificationTopicFifo=true, on moto, observed through an SQS FIFO
queue subscribed to the topic (the subscriber that keeps order and deduplication). moto's SNS does
not drop repeats itself: it passes each entry's MessageDeduplicationId on to the queue, and moto's
FIFO queue drops a repeat within five minutes, as real SNS does at the topic. So these tests prove
that the ids the core sends make the repeat a duplicate to SNS's FIFO rules; the unit tests in
tests/unit/test_notify.py prove the ids themselves.
"""

import json

import pytest

from tests.reliability.harness import moto_world
from tests.reliability.test_fault_kinds import LIFECYCLE, calls_of, deliver, published
from tests.support import factories as f
from tests.support.expectations import unpublished

# The crashes after which a retry publishes a change again: SNS took it, its history was not written.
REPEATING_CRASHES = [("crash_after", "PublishBatch"), ("crash_before", "BatchWriteItem")]


@pytest.fixture(scope="module")
def fifo_world(consumer, webhook):
    with moto_world(consumer, webhook, {"NotificationTopicFifo": "true"}) as built:
        yield built


@pytest.fixture
def fresh(fifo_world):
    fifo_world.reset()
    fifo_world.faults.reset({}, {})
    return fifo_world


def count_published_entries(world) -> list[int]:
    """A list that grows by one per entry the core asks SNS to publish (counted as the call is made)."""
    from twilio_sink import aws

    entries: list[int] = []
    aws.client("sns").meta.events.register(
        "provide-client-params.sns.PublishBatch",
        lambda params, **_: entries.extend([1] * len(params["PublishBatchRequestEntries"])),
        unique_id="count-entries")
    return entries


def test_the_topic_is_a_fifo_topic_without_content_based_deduplication(fresh):
    attributes = fresh.stack.sns.get_topic_attributes(TopicArn=fresh.stack.topic_arn)["Attributes"]
    assert fresh.stack.topic_arn.endswith(".fifo")
    assert attributes["FifoTopic"] == "true" and attributes["ContentBasedDeduplication"] == "false"


@pytest.mark.parametrize("sink", ["kinesis", "webhook"])
@pytest.mark.parametrize(("kind", "operation"), REPEATING_CRASHES, ids=lambda v: v)
def test_a_change_republished_after_a_crash_between_publish_and_record_reaches_subscribers_once(
        fresh, sink, kind, operation):
    # Given a crash after SNS took the notifications and before the history that proves them
    number = calls_of(fresh, LIFECYCLE, sink).index(operation)
    entries = count_published_entries(fresh)
    fresh.faults.reset({number: kind}, {})
    try:
        # When Lambda (or Twilio) retries and the retry publishes the same changes again
        deliver(fresh, LIFECYCLE, sink)
    finally:
        from twilio_sink import aws

        aws.client("sns").meta.events.unregister("provide-client-params.sns.PublishBatch", unique_id="count-entries")
    assert fresh.faults.fired, "the fault was not injected"
    assert len(entries) > len(LIFECYCLE), f"no change was published again ({len(entries)} entries): nothing to drop"
    # Then the topic delivered each change once, in order, and no claim is left unpublished
    assert published(fresh) == [("MM1", "queued"), ("MM1", "sent")]
    assert fresh.stack.states()["message#MM1"]["status"] == "sent" and unpublished(fresh.stack) == set()


def test_each_entity_s_changes_arrive_in_order_in_its_own_message_group(fresh):
    # Given three entities' lifecycles interleaved in one delivery
    events = [f.message(status, message_id=f"MM{n}", seconds=step)
              for step, status in enumerate(["queued", "sent", "delivered"]) for n in range(1, 4)]
    deliver(fresh, events)
    # Then the subscriber gets every change once, each entity's in order, grouped by entity
    received = []
    while batch := fresh.stack.sqs.receive_message(QueueUrl=fresh.stack.subscriber_url, MaxNumberOfMessages=10,
                                                   AttributeNames=["All"]).get("Messages"):
        for message in batch:
            received.append(message)
            fresh.stack.sqs.delete_message(QueueUrl=fresh.stack.subscriber_url, ReceiptHandle=message["ReceiptHandle"])
    bodies = [json.loads(json.loads(m["Body"])["Message"]) for m in received]
    for n in range(1, 4):
        assert [b["status"] for b in bodies if b["id"] == f"MM{n}"] == ["queued", "sent", "delivered"]
    assert {m["Attributes"]["MessageGroupId"] for m in received} == {"message#MM1", "message#MM2", "message#MM3"}
    assert all(m["Attributes"]["MessageGroupId"] == f"message#{b['id']}" for m, b in zip(received, bodies))
    assert len({m["Attributes"]["MessageDeduplicationId"] for m in received}) == 9
