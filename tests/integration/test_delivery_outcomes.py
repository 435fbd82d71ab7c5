"""Delivery health metrics: a known mix through both doors (and the reconciler) counts exactly, once.

The metrics are read from the EMF the real handlers print (tests/support/expectations.py), summed per
dimension set as CloudWatch would store them.
"""

import pytest
from botocore.exceptions import ClientError

from sink_dev.samples import SAMPLE_ACCOUNT_SID, SAMPLE_SUBACCOUNT_SID
from tests.support import factories
from tests.support.expectations import emitted, metric_totals
from tests.support.factories import A2P, MESSAGE, at, cloudevent
from tests.support.sinks import consume, failed_sequences, post, without_deadline

A, B = SAMPLE_ACCOUNT_SID, SAMPLE_SUBACCOUNT_SID
STATUS = "com.twilio.messaging.message."  # Programmable Messaging


@pytest.fixture(autouse=True)
def _metrics_on(monkeypatch):
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    without_deadline(monkeypatch)


def of(account: str, event: dict) -> dict:
    event["source"] = f"/2010-04-01/Accounts/{account}/Messages/{event['id']}.json"
    return event


def message(status: str, sid: str, seconds: float, account: str = A, **data) -> dict:
    return of(account, factories.message(status, sid, seconds, **data))


def programmable(status: str, sid: str, seconds: float, account: str, **data) -> dict:
    payload = {"messageSid": sid, "messageStatus": status.upper(), "accountSid": account, **data}
    return of(account, cloudevent(STATUS + status, payload, seconds))


def correction(status: str, sid: str, seconds: float) -> dict:
    """What the reconciler applies: names no account (the stored state does)."""
    return {"specversion": "1.0", "type": MESSAGE + status, "source": "reconciler", "id": f"RC{sid}{status}",
            "time": at(seconds), "datacontenttype": "application/json", "data": {"message_id": sid, "attempt": "1"}}


def dims(**pairs: str) -> tuple:
    return tuple(sorted(pairs.items()))


def test_a_known_mix_through_both_doors_counts_each_outcome_once(stack, consumer, webhook, context, capsys):
    from twilio_sink.pipeline import default_pipeline
    from twilio_sink.reconcile import apply

    # Given a mix of outcomes for two accounts, spread over the webhook and the stream
    m1 = [message("sent", "MM1", 1), message("delivered", "MM1", 4)]
    m2 = [message("sent", "MM2", 1), message("undelivered", "MM2", 3, error_code="30007")]
    m3 = [programmable("sent", "SM3", 1, B), programmable("failed", "SM3", 2, B, errorCode=30034)]
    m4 = message("failed", "MM4", 5, B, error_code="12345")  # a code outside the documented list
    m5 = [message("queued", "MM5", 0), message("failed", "MM5", 2)]  # no code; never `sent`
    m6 = [message("delivered", "MM6", 3), message("read", "MM6", 9)]
    m6_late_sent = message("sent", "MM6", 1)
    m7_sent = message("sent", "MM7", 1)
    brand = factories.brand("brand-failure")
    campaign = cloudevent(A2P + "campaign-registration.campaign-failure", {"campaignsid": "CM1"}, 2)
    tollfree = cloudevent(A2P + "toll-free-verification.rejected", {"tollfreeverificationsid": "HH1"}, 2)
    capsys.readouterr()

    # When they arrive, with duplicates (the same events again, through the other door) and stale events
    assert post(webhook, context, [m1[0], m2[0], m3[0], m5[0], m6[0], brand])[0] == 200
    batch = [m1[1], m2[1], m3[1], m4, m5[1], m6[1], tollfree, campaign, m7_sent]
    assert failed_sequences(consume(consumer, context, batch)) == []
    assert post(webhook, context, [m1[1], m6_late_sent, m2[1], brand])[0] == 200
    assert failed_sequences(consume(consumer, context, [m3[1], m6[0], m1[0]], first_sequence=100)) == []
    # and the reconciler corrects one message Twilio's events never finished, and confirms another
    assert not apply(default_pipeline(), [correction("delivered", "MM7", 10), correction("delivered", "MM1", 12)],
                     "reconciler").failed

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
    from twilio_sink.inbound import Received
    from twilio_sink.pipeline import Pipeline, default_pipeline

    # Given a pipeline whose outcome metrics may name only account B, and an applied change of account A
    core = default_pipeline()
    pipeline = Pipeline(core.store, core.notifier, core.dead_letters, accounts=frozenset({B}))
    event = message("delivered", "MM1", 4)
    capsys.readouterr()

    # When it is applied
    pipeline.process([Received("kinesis", "{}", {"sequence_number": "1"}, event=to_cloudevent(event))])

    # Then its outcome is counted without an account
    assert metric_totals(emitted(capsys), "Outcomes") == {dims(family="comms-messages", status="delivered"): 1}
