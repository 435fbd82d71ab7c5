"""The real Kinesis consumer against moto: statuses, notifications, dead letters, retries."""

import json
import time

import boto3
import pytest
from moto.core.utils import unix_time_millis as moto_unix_time_millis

from sink_dev.samples import load_samples
from tests.support import factories as f
from tests.support.expectations import (
    assert_contract_state,
    expected_final,
    expected_per_event,
    unpublished,
    unpublished_claims,
)
from tests.support.sinks import consume, failed_sequences, kinesis_batch
from twilio_sink.envelope import CloudEvent
from twilio_sink.registry import family_of

SAMPLES = load_samples()


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s["type"].rsplit(".", 2)[-2] + "." + s["type"].rsplit(".", 1)[-1])
def test_every_sample_type_ends_in_its_status_with_one_notification(stack, consumer, context, sample):
    # Given an empty table, When the sample arrives alone on the stream
    response = consume(consumer, context, [sample])
    # Then it is applied, its state is contract 2's, and exactly one contract-3 notification is published
    assert response == {"batchItemFailures": []}
    expected = expected_per_event(sample)
    state = stack.states()[f"{expected['entity']}#{expected['id']}"]
    assert_contract_state(state, sample, expected)
    notes = stack.notifications()
    assert len(notes) == 1
    note = notes[0]
    assert note["entity"] == expected["entity"] and note["id"] == expected["id"]
    assert note["status"] == expected["status"] and note["previous_status"] is None
    assert note["event_type"] == sample["type"] and note["event_id"] == sample["id"]
    assert note["data"] == sample["data"]
    # ...with the account as an attribute when the event names one (the stream cannot tell otherwise
    # which of the local stack's two accounts it belongs to)
    event = CloudEvent.model_validate(sample)
    account = family_of(event.type).account_sid(event)
    assert note["_attributes"] == {"entity": expected["entity"], "status": expected["status"],
                                   "event_type": sample["type"]} | ({"account_sid": account} if account else {})
    assert len(stack.history(state["pk"])) == 1
    assert stack.dead_letters() == []


def test_replaying_all_samples_in_order_gives_the_expected_final_states(stack, consumer, context):
    consume(consumer, context, SAMPLES)
    states = stack.states()
    for expected in expected_final():
        assert states[f"{expected['entity']}#{expected['id']}"]["status"] == expected["status"], expected
    assert len(states) == len(expected_final())
    # every sample of this in-order replay is an applied change
    assert len(stack.notifications()) == len(SAMPLES)


def test_replaying_all_samples_in_reverse_gives_the_same_final_states(stack, consumer, context):
    consume(consumer, context, list(reversed(SAMPLES)))
    states = stack.states()
    for expected in expected_final():
        assert states[f"{expected['entity']}#{expected['id']}"]["status"] == expected["status"], expected


def test_in_order_lifecycle_in_one_batch_publishes_each_change_in_order(stack, consumer, context):
    events = [f.message("queued", seconds=0), f.message("sent", seconds=1), f.message("delivered", seconds=2)]
    consume(consumer, context, events)
    notes = stack.notifications()
    assert [(n["status"], n["previous_status"]) for n in notes] == [
        ("queued", None), ("sent", "queued"), ("delivered", "sent")]
    assert stack.states()["message#MM1"]["status"] == "delivered"


def test_out_of_order_lifecycle_publishes_only_what_moved_the_state(stack, consumer, context):
    events = [f.message("delivered", seconds=2), f.message("queued", seconds=0), f.message("sent", seconds=1)]
    consume(consumer, context, events)
    assert [n["status"] for n in stack.notifications()] == ["delivered"]
    assert stack.states()["message#MM1"]["status"] == "delivered"
    # stale events are still kept in the history
    assert len(stack.history("message#MM1")) == 3


def test_duplicates_across_batches_change_nothing_and_publish_nothing(stack, consumer, context):
    events = [f.message("queued", seconds=0), f.message("sent", seconds=1)]
    consume(consumer, context, events)
    before = stack.states()["message#MM1"]
    stack.notifications()
    consume(consumer, context, events + events, first_sequence=100)
    after = stack.states()["message#MM1"]
    assert stack.notifications() == []
    assert after["version"] == before["version"] and after["event_id"] == before["event_id"]


POISON = [
    (b"\xff\xfe\xfd", "undecodable"),
    (b"{not json", "not_json"),
    (b'["an array"]', "not_cloudevent"),
    (json.dumps(f.message("queued", message_id="MM-C", attempt="two")).encode(), "invalid_payload"),
    (json.dumps(f.message("queued", message_id="")).encode(), "invalid_payload"),
    (json.dumps(f.message("queued") | {"time": "2023-06-15713:51:04.528Z"}).encode(), "not_cloudevent"),
    (b'{"padding": "' + b"x" * 300_000 + b'"}', "oversized"),
]


def test_poison_records_become_dead_letters_and_never_fail_their_neighbours(stack, consumer, context):
    good = [f.message("queued", message_id="MM-A"), f.message("queued", message_id="MM-B")]
    items = [good[0], *(raw for raw, _ in POISON), good[1]]
    response = consume(consumer, context, items)
    assert response == {"batchItemFailures": []}
    assert {pk for pk in stack.states()} == {"message#MM-A", "message#MM-B"}
    letters = stack.dead_letters()
    assert sorted(letter["reason"] for letter in letters) == sorted(reason for _, reason in POISON)
    for letter in letters:
        assert letter["source"] == "kinesis" and letter["detail"]
        assert letter["origin"]["sequence_number"]
    by_reason = {letter["reason"]: letter for letter in letters}
    assert by_reason["not_json"]["raw"] == "{not json"
    assert by_reason["oversized"]["raw_truncated"] is True
    assert by_reason["undecodable"]["raw"] == "//79"  # undecodable bytes kept as base64


def test_throttled_write_fails_only_that_entity_and_the_retry_publishes_once(stack, consumer, context, fail):
    # Given a batch touching two entities, and DynamoDB throttling the first state write
    events = [f.message("queued", message_id="MM-A"), f.message("queued", message_id="MM-B")]
    fail("dynamodb", "put_item", times=1)
    batch = kinesis_batch(events)
    response = consumer.lambda_handler(batch, context)
    # Then one record is reported for retry and the other entity is done
    assert len(failed_sequences(response)) == 1
    assert len(stack.states()) == 1
    # When Lambda retries from the failed record (both records come again)
    assert consumer.lambda_handler(batch, context) == {"batchItemFailures": []}
    # Then both are applied, and each change was published exactly once
    assert {s["status"] for s in stack.states().values()} == {"queued"}
    assert sorted(n["id"] for n in stack.notifications()) == ["MM-A", "MM-B"]


def test_failed_publish_keeps_the_notification_pending_until_a_retry_publishes_it(stack, consumer, context, fail):
    batch = kinesis_batch([f.message("queued"), f.message("sent", seconds=1)])
    fail("sns", "publish_batch", times=1)
    response = consumer.lambda_handler(batch, context)
    assert len(failed_sequences(response)) == 2
    state = stack.states()["message#MM1"]
    assert state["status"] == "sent" and len(unpublished_claims(stack)["message#MM1"]) == 2
    assert stack.notifications() == []
    # The retry finds `queued` stale and `sent` a duplicate, but publishes both unpublished claims, in order
    assert consumer.lambda_handler(batch, context) == {"batchItemFailures": []}
    assert [(n["status"], n["previous_status"]) for n in stack.notifications()] == [("queued", None), ("sent", "queued")]
    assert unpublished(stack) == set()
    # and a third delivery publishes nothing more
    consumer.lambda_handler(batch, context)
    assert stack.notifications() == []


@pytest.mark.parametrize(
    ("service", "operation"),
    [("dynamodb", "batch_get_item"), ("dynamodb", "batch_write_item"), ("dynamodb", "update_item")],
)
def test_each_failing_aws_call_is_retried_without_loss_or_doubles(stack, consumer, context, fail, service, operation):
    first = [f.message("queued", seconds=0)]
    consume(consumer, context, first)
    stack.notifications()
    batch = kinesis_batch(first + [f.message("sent", seconds=1)], 50)
    fail(service, operation, times=1)
    response = consumer.lambda_handler(batch, context)
    assert failed_sequences(response)
    first_attempt = stack.notifications()  # a failed history write does not hold back the state's change
    assert consumer.lambda_handler(batch, context) == {"batchItemFailures": []}
    assert stack.states()["message#MM1"]["status"] == "sent"
    assert len(stack.history("message#MM1")) == 2
    assert [(n["id"], n["status"]) for n in first_attempt + stack.notifications()] == [("MM1", "sent")]


def test_failing_to_keep_the_history_after_publishing_marks_the_claim_so_the_retry_publishes_nothing(
        stack, consumer, context, fail):
    # Given DynamoDB failing the history write that follows a successful publish (the usual proof of it)
    injected = fail("dynamodb", "batch_write_item")
    batch = kinesis_batch([f.message("queued")])
    # When an event is applied and published
    response = consumer.lambda_handler(batch, context)
    # Then the record is retried (its history is missing), the claim says "published", and the retry
    # keeps the history without publishing again
    assert injected["left"] == 0 and len(failed_sequences(response)) == 1
    assert [claim.split("|")[2] for claim in stack.states()["message#MM1"]["claims"].values()] == ["published"]
    assert consumer.lambda_handler(batch, context) == {"batchItemFailures": []}
    assert [n["status"] for n in stack.notifications()] == ["queued"]
    assert len(stack.history("message#MM1")) == 1


def test_dead_letter_queue_failure_retries_the_poison_record(stack, consumer, context, fail):
    batch = kinesis_batch([f.message("queued"), b"{not json"])
    fail("sqs", "send_message_batch", times=1)
    response = consumer.lambda_handler(batch, context)
    assert failed_sequences(response) == [batch["Records"][1]["kinesis"]["sequenceNumber"]]
    assert consumer.lambda_handler(batch, context) == {"batchItemFailures": []}
    assert [letter["reason"] for letter in stack.dead_letters()] == ["not_json"]


def test_a_batch_that_fails_entirely_reports_every_record_instead_of_raising(stack, consumer, context, fail):
    # A throttled read fails every record: reporting them all lets Lambda retry the batch as it is,
    # where raising would count a function error (alarm) and bisect a batch that has nothing wrong.
    fail("dynamodb", "batch_get_item", times=1)
    batch = kinesis_batch([f.message("queued"), f.message("queued", message_id="MM2")])
    response = consumer.lambda_handler(batch, context)
    assert failed_sequences(response) == [r["kinesis"]["sequenceNumber"] for r in batch["Records"]]
    assert stack.states() == {}
    assert consumer.lambda_handler(batch, context) == {"batchItemFailures": []}
    assert len(stack.states()) == 2


# Slow: moto's SQS rescans its whole queue at each message sent, and this sends 5,000 letters.
@pytest.mark.slow
def test_changes_too_large_for_one_item_become_dead_letters_instead_of_blocking_the_shard(
        stack, consumer, context, monkeypatch):
    import moto.sqs.models

    from twilio_sink.dead_letters import DeadLetterQueue

    # The rescan asks each letter whether it is visible, each time building the time from datetimes
    # (12.5 million times, nine tenths of this test's minute and a half): the same clock, read directly.
    monkeypatch.setattr(moto.sqs.models, "unix_time_millis",
                        lambda dt=None: time.time() * 1000 if dt is None else moto_unix_time_millis(dt))

    # Reading 5,000 letters back from moto's queue takes minutes (each receive scans the queue):
    # record what the consumer sends, and count what the queue holds.
    sent = []
    send = DeadLetterQueue.send
    monkeypatch.setattr(DeadLetterQueue, "send", lambda queue, letters: sent.extend(letters) or send(queue, letters))
    # Given 5,000 applied changes of one brand in one batch, whose claims (~90 bytes each) together
    # exceed DynamoDB's 400 KB item, and a small neighbour in the same batch
    lifecycle = [f.brand("brand-registered", seconds=second) for second in range(5_000)]
    response = consume(consumer, context, [*lifecycle, f.message("queued", message_id="MM-small")])
    # Then nothing is retried (it could never succeed): the brand's events are dead letters, the neighbour is done
    assert response == {"batchItemFailures": []}
    assert sorted(letter.event_id for letter in sent) == sorted(e["id"] for e in lifecycle)
    assert {letter.reason for letter in sent} == {"oversized"}
    assert "400 KB" in sent[0].detail
    queued = boto3.client("sqs").get_queue_attributes(QueueUrl=stack.dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
    assert int(queued["Attributes"]["ApproximateNumberOfMessages"]) == len(lifecycle)
    assert set(stack.states()) == {"message#MM-small"}
    assert [n["id"] for n in stack.notifications()] == ["MM-small"]


@pytest.mark.parametrize("days", ["90", "0"])
def test_history_items_expire_after_the_retention_and_state_items_never(stack, consumer, context, monkeypatch, days):
    from sink_dev.template import load_template
    from twilio_sink import config
    from twilio_sink.store import EXPIRES_AT

    # Given the table's TTL attribute (template) and a retention of `days` (HistoryRetentionDays)
    ttl = load_template()["Resources"]["StatusTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": EXPIRES_AT, "Enabled": True}
    monkeypatch.setenv("HISTORY_RETENTION_DAYS", days)
    config.settings.cache_clear()
    from twilio_sink.pipeline import default_pipeline

    default_pipeline.cache_clear()
    consume(consumer, context, [f.message("queued")])
    [history] = stack.history("message#MM1")
    assert EXPIRES_AT not in stack.states()["message#MM1"]
    if days == "0":
        assert EXPIRES_AT not in history
    else:
        assert abs(int(history[EXPIRES_AT]) - (time.time() + 90 * 86_400)) < 600
