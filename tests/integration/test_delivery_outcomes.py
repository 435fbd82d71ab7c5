"""Delivery health metrics: a known mix through both doors (and the reconciler) counts exactly, once.

The metrics are read from the EMF the real handlers print (tests/support/expectations.py), summed per
dimension set as CloudWatch would store them.
"""

import pytest
from botocore.exceptions import ClientError

from tests.support import outcome_mix
from tests.support.expectations import emitted, metric_totals
from tests.support.outcome_mix import A, B, message
from tests.support.sinks import consume, failed_sequences, without_deadline


@pytest.fixture(autouse=True)
def _metrics_on(monkeypatch):
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    without_deadline(monkeypatch)


def dims(**pairs: str) -> tuple:
    return tuple(sorted(pairs.items()))


def test_a_known_mix_through_both_doors_counts_each_outcome_once(stack, consumer, webhook, context, capsys):
    # Given a known mix of outcomes for two accounts (tests/support/outcome_mix.py)
    capsys.readouterr()

    # When it arrives through both doors, with duplicates and stale events, and the reconciler corrects
    outcome_mix.deliver(consumer, webhook, context)

    # Then each outcome is counted once: per family and status, per error code, with its account
    records = emitted(capsys)
    outcomes = metric_totals(records, "Outcomes")
    assert outcomes == {
        dims(family="comms-messages", status="delivered"): 3,  # MM1, MM6, MM7 (the correction)
        dims(family="comms-messages", status="undelivered"): 1,
        dims(family="comms-messages", status="failed"): 2,
        dims(family="comms-messages", status="read"): 1,
        dims(family="message-status", status="failed"): 1,
        dims(family="brands", status="failed"): 1,
        dims(family="campaigns", status="failed"): 1,
        dims(family="comms-messages", status="delivered", account=A): 3,
        dims(family="comms-messages", status="undelivered", account=A): 1,
        dims(family="comms-messages", status="failed", account=A): 1,
        dims(family="comms-messages", status="read", account=A): 1,
        dims(family="comms-messages", status="failed", account=B): 1,
        dims(family="message-status", status="failed", account=B): 1,
        dims(family="brands", status="failed", account=A): 1,
        dims(family="campaigns", status="failed", account=A): 1,
    }
    assert metric_totals(records, "DeliveryErrors") == {
        dims(error_code="30007"): 1, dims(error_code="30034"): 1, dims(error_code="other"): 1,
        dims(error_code="none"): 1,
        dims(error_code="30007", account=A): 1, dims(error_code="none", account=A): 1,
        dims(error_code="30034", account=B): 1, dims(error_code="other", account=B): 1,
    }
    # sent -> end of delivery, from the two events' times (MM5 was never `sent`: no sample)
    latencies = sorted((record["family"], value) for record in records if "DeliveryLatency" in record
                       for value in record["DeliveryLatency"])
    assert latencies == [("comms-messages", 2000.0), ("comms-messages", 3000.0), ("comms-messages", 9000.0),
                         ("message-status", 1000.0)]
    assert metric_totals(records, "ComplianceSetbacks") == {
        dims(family="brands"): 1, dims(family="campaigns"): 1, dims(family="toll-free"): 1}
    # No outcome metric carries the door (`service`) or an entity id.
    for record in records:
        for directive in record["_aws"]["CloudWatchMetrics"]:
            if {m["Name"] for m in directive["Metrics"]} & {"Outcomes", "DeliveryErrors", "DeliveryLatency",
                                                              "ComplianceSetbacks"}:
                assert all("service" not in names for names in directive["Dimensions"])


def outcomes_counted(capsys) -> int:
    return sum(count for key, count in metric_totals(emitted(capsys), "Outcomes").items()
               if dict(key) == {"family": "comms-messages", "status": "delivered"})


def test_a_state_write_that_failed_is_counted_by_the_retry_only(stack, consumer, context, capsys, fail):
    # Given the state write of a delivered message is throttled once (nothing written)
    fail("dynamodb", "put_item", times=1)
    batch = [message("sent", "MM1", 1), message("delivered", "MM1", 4)]
    capsys.readouterr()

    # When Lambda retries the failed records
    assert failed_sequences(consume(consumer, context, batch)) != []
    first = outcomes_counted(capsys)
    assert failed_sequences(consume(consumer, context, batch)) == []

    # Then the outcome is counted once, by the run that applied and published it
    assert (first, outcomes_counted(capsys)) == (0, 1)


def test_a_state_write_that_took_effect_but_answered_an_error_is_counted_once(stack, consumer, context, capsys,
                                                                              monkeypatch):
    from twilio_sink import aws

    # Given the state write takes effect but its answer is lost (a timeout after DynamoDB wrote)
    client = aws.client("dynamodb")
    real, left = client.put_item, [1]

    def lost_answer(**kwargs):
        answer = real(**kwargs)
        if left[0]:
            left[0] -= 1
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, "PutItem")
        return answer

    monkeypatch.setattr(client, "put_item", lost_answer)
    batch = [message("delivered", "MM1", 4)]
    capsys.readouterr()

    # When Lambda retries the record (for the retry the change is a duplicate with its own claim)
    assert failed_sequences(consume(consumer, context, batch)) != []
    first = outcomes_counted(capsys)
    assert failed_sequences(consume(consumer, context, batch)) == []

    # Then the retry that published the change counts it: once in all
    assert (first, outcomes_counted(capsys)) == (0, 1)
    assert len(stack.notifications()) == 1


@pytest.mark.parametrize(("service", "operation"), [("sns", "publish_batch"), ("dynamodb", "batch_write_item")])
def test_a_retry_after_a_failed_publish_or_history_write_does_not_count_again(
        stack, consumer, context, capsys, fail, service, operation):
    # Given publishing (or keeping the history) fails once after the state was written
    fail(service, operation, times=1)
    batch = [message("sent", "MM1", 1), message("delivered", "MM1", 4)]
    capsys.readouterr()

    # When Lambda retries the failed records
    assert failed_sequences(consume(consumer, context, batch)) != []
    first = outcomes_counted(capsys)
    assert failed_sequences(consume(consumer, context, batch)) == []
    second = outcomes_counted(capsys)

    # Then the outcome is counted once in all, by the run that published it
    assert first + second == 1
    assert [n["status"] for n in stack.notifications()].count("delivered") == 1


def test_accounts_not_accepted_never_become_dimensions(stack, capsys):
    from twilio_sink.envelope import to_cloudevent
    from twilio_sink.pipeline import Pipeline, default_pipeline
    from twilio_sink.received import Received

    # Given a pipeline whose outcome metrics may name only account B, and an applied change of account A
    core = default_pipeline()
    pipeline = Pipeline(core.store, core.notifier, core.dead_letters, accounts=frozenset({B}))
    event = message("delivered", "MM1", 4)
    capsys.readouterr()

    # When it is applied
    pipeline.process([Received("kinesis", "{}", {"sequence_number": "1"}, event=to_cloudevent(event))])

    # Then its outcome is counted without an account
    assert metric_totals(emitted(capsys), "Outcomes") == {dims(family="comms-messages", status="delivered"): 1}


def test_a_batch_with_more_latency_samples_than_one_emf_record_holds(stack, consumer, context, capsys):
    # Given 150 messages sent and delivered in one batch (EMF holds at most 100 values of a metric per record)
    batch = [event for n in range(150) for event in (message("sent", f"MM{n}", 1), message("delivered", f"MM{n}", 3))]
    capsys.readouterr()

    # When the consumer processes it
    assert failed_sequences(consume(consumer, context, batch)) == []

    # Then every sample is emitted, in records of at most 100 values, each with its dimension
    records = [record for record in emitted(capsys) if "DeliveryLatency" in record]
    assert sum(len(record["DeliveryLatency"]) for record in records) == 150
    assert all(len(record["DeliveryLatency"]) <= 100 and record["family"] == "comms-messages" for record in records)
    assert metric_totals(records, "DeliveryLatency") == {dims(family="comms-messages"): 150 * 2000.0}


def test_metrics_that_cannot_be_emitted_never_fail_the_batch(stack, consumer, context, capsys, monkeypatch):
    from twilio_sink import pipeline

    # Given the delivery-health emitter fails
    def broken(tally):
        raise RuntimeError("injected")

    monkeypatch.setattr(pipeline, "emit_outcome_metrics", broken)
    batch = [message("sent", "MM1", 1), message("delivered", "MM1", 4)]

    # When a batch is processed, Then it succeeds and every change is announced once
    assert failed_sequences(consume(consumer, context, batch)) == []
    assert [n["status"] for n in stack.notifications()] == ["sent", "delivered"]
    assert failed_sequences(consume(consumer, context, batch)) == []
    assert stack.notifications() == []
