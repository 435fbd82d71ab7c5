"""Packing notifications across entities into PublishBatch requests, and what a refusal stops.

The SNS calls themselves are exercised against moto by the integration tests; here a recording
client plays SNS so that partial refusals (which moto never produces) can be forced.
"""

import json

from botocore.exceptions import ClientError

from twilio_sink.notify import PUBLISH_BATCH_BYTES, Notification, Notifier, deduplication_id, message_group_id


class RecordingSns:
    """Answers publish_batch, refusing the bodies listed in `refuse` and failing calls listed in `fail_calls`."""

    def __init__(self, refuse=(), fail_calls=()):
        self.requests: list[list[str]] = []
        self.refuse, self.fail_calls = set(refuse), set(fail_calls)

    def publish_batch(self, TopicArn, PublishBatchRequestEntries):
        self.requests.append([entry["Message"] for entry in PublishBatchRequestEntries])
        if len(self.requests) - 1 in self.fail_calls:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "injected"}}, "PublishBatch")
        ok = [e for e in PublishBatchRequestEntries if e["Message"] not in self.refuse]
        return {"Successful": [{"Id": e["Id"], "MessageId": "m"} for e in ok],
                "Failed": [{"Id": e["Id"], "Code": "InternalError", "SenderFault": False}
                           for e in PublishBatchRequestEntries if e not in ok]}


def notes(stream: str, count: int, size: int = 10) -> list[Notification]:
    return [Notification(f"{stream}-{i}", json.dumps({"n": f"{stream}-{i}", "pad": "x" * size}),
                         {"entity": "message", "status": "sent", "event_type": "t"}) for i in range(count)]


def names(bodies: list[str]) -> list[str]:
    return [json.loads(body)["n"] for body in bodies]


def test_small_streams_share_requests_of_ten_and_keep_their_order():
    sns = RecordingSns()
    streams = {f"e{i}": notes(f"e{i}", 3) for i in range(7)}  # 21 notifications, 3 per entity
    delivered = Notifier("arn", sns).publish_in_order(streams)
    assert [len(request) for request in sns.requests] == [9, 9, 3]  # entities are never split across requests
    assert delivered.published == {stream: [n.key for n in ns] for stream, ns in streams.items()}
    assert delivered.errors == {}
    sent = [name for request in sns.requests for name in names(request)]
    for stream, ns in streams.items():
        assert [name for name in sent if name.startswith(stream + "-")] == [n.key for n in ns]


def test_a_long_stream_is_a_chain_of_requests_sent_in_order():
    sns = RecordingSns()
    delivered = Notifier("arn", sns).publish_in_order({"long": notes("long", 23), "short": notes("short", 2)})
    assert sorted(len(request) for request in sns.requests) == [2, 3, 10, 10]
    long_requests = [names(request) for request in sns.requests if names(request)[0].startswith("long")]
    assert [name for request in long_requests for name in request] == [f"long-{i}" for i in range(23)]
    assert len(delivered.published["long"]) == 23


def test_requests_stay_under_the_sns_size_limit():
    sns = RecordingSns()
    big = PUBLISH_BATCH_BYTES // 3
    Notifier("arn", sns).publish_in_order({"a": notes("a", 2, size=big), "b": notes("b", 2, size=big)})
    assert all(sum(len(body) for body in request) <= PUBLISH_BATCH_BYTES for request in sns.requests)
    assert sum(len(request) for request in sns.requests) == 4


def test_a_refused_entry_stops_only_its_own_stream_there():
    streams = {"a": notes("a", 3), "b": notes("b", 3)}
    sns = RecordingSns(refuse={streams["a"][1].body})
    delivered = Notifier("arn", sns).publish_in_order(streams)
    # a-0 went out; a-1 was refused, so a-2 must wait (order) even though SNS took it; b is untouched
    assert delivered.published == {"a": ["a-0"], "b": ["b-0", "b-1", "b-2"]}
    assert set(delivered.errors) == {"a"}


def test_a_failed_request_fails_its_streams_and_the_rest_of_their_chains():
    streams = {"long": notes("long", 12), "other": notes("other", 9)}
    sns = RecordingSns(fail_calls={0})  # the first request: the long chain's first ten
    delivered = Notifier("arn", sns).publish_in_order(streams)
    assert "long" not in delivered.published and isinstance(delivered.errors["long"], ClientError)
    assert delivered.published["other"] == [n.key for n in streams["other"]]
    assert len(sns.requests) == 2  # the chain's second request was never sent


def test_no_request_starts_once_the_lease_is_over_not_even_within_a_series():
    sns = RecordingSns()
    lease = iter([True, False])  # held for the first request, over before the second
    delivered = Notifier("arn", sns).publish_in_order({"long": notes("long", 12)}, may_start=lambda: next(lease))
    assert [names(request) for request in sns.requests] == [[f"long-{i}" for i in range(10)]]
    assert delivered.published == {"long": [f"long-{i}" for i in range(10)]}
    assert type(delivered.errors["long"]).__name__ == "LeaseOver"


class CapturingSns(RecordingSns):
    def __init__(self):
        super().__init__()
        self.entries: list[dict] = []

    def publish_batch(self, TopicArn, PublishBatchRequestEntries):
        self.entries.extend(PublishBatchRequestEntries)
        return super().publish_batch(TopicArn, PublishBatchRequestEntries)


def test_a_fifo_topic_gets_the_entity_as_group_and_the_change_as_deduplication_id():
    streams = {"message#MM1": notes("m1", 12), "message#MM2": notes("m2", 2)}
    fifo, again, standard = CapturingSns(), CapturingSns(), CapturingSns()
    Notifier("arn:aws:sns:us-east-1:123456789012:t.fifo", fifo).publish_in_order(streams)
    Notifier("arn:aws:sns:us-east-1:123456789012:t.fifo", again).publish_in_order(streams)
    Notifier("arn:aws:sns:us-east-1:123456789012:t", standard).publish_in_order(streams)
    assert [e["MessageGroupId"] for e in fifo.entries if json.loads(e["Message"])["n"].startswith("m1")] == \
        ["message#MM1"] * 12
    ids = [e["MessageDeduplicationId"] for e in fifo.entries]
    # One id per change, within SNS's 128 characters, and the same when the change is published again
    assert len(set(ids)) == 14 and all(len(i) <= 128 for i in ids)
    assert sorted(ids) == sorted(e["MessageDeduplicationId"] for e in again.entries)
    # A standard topic refuses these fields: none is sent to it
    assert not any({"MessageGroupId", "MessageDeduplicationId"} & set(e) for e in standard.entries)


def test_the_same_order_key_on_two_entities_is_two_changes():
    one = notes("x", 1)[0]
    assert deduplication_id("message#MM1", one) != deduplication_id("message#MM2", one)


def test_an_entity_sns_would_refuse_as_group_id_gets_a_stable_digest():
    assert message_group_id("message#MM1") == "message#MM1"
    for odd in ("conversation#" + "x" * 200, "participant#café", "a b"):
        assert message_group_id(odd) == message_group_id(odd) != odd
        assert len(message_group_id(odd)) <= 128 and message_group_id(odd).isascii()
