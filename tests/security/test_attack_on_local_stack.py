"""The local stack (`twilio-sink serve`, its own process on 127.0.0.1) attacked over HTTP and through its
stream, as in issue 15's "done when": no unsigned, mis-signed, replayed, foreign-account or non-JSON
input changes the table or publishes anything, no attacker input gets a 5xx, and the logs never
carry the token. One genuine delivery is the control: it is applied, once."""

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
from twilio.request_validator import RequestValidator

from sink_dev.samples import LOCAL_TEST_AUTH_TOKEN, body_sha256, kinesis_payload
from tests.operate.test_serve import served  # noqa: F401 - the fixture that starts the local stack
from tests.support import factories as f

THEIRS = "AC" + "e" * 32
DEAD_LETTER_SECONDS = 60


def client(state, service):
    return boto3.client(service, region_name=state["region"], endpoint_url=state["endpoint_url"],
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def send(state, body: str, token: str | None = LOCAL_TEST_AUTH_TOKEN, path: str = "", method: str = "POST",
         signed_query: str | None = None, sent_query: str | None = None, sent_body: str | None = None) -> int:
    """A request as Twilio would make it (signed over the public URL with bodySHA256), or altered."""
    query = signed_query if signed_query is not None else f"bodySHA256={body_sha256(body)}"
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["X-Twilio-Signature"] = RequestValidator(token).compute_signature(f"{state['public_url']}?{query}", {})
    base = state["webhook_url"].rsplit("/", 1)[0] + (path or "/events")
    request = urllib.request.Request(f"{base}?{sent_query if sent_query is not None else query}",
                                     data=(sent_body if sent_body is not None else body).encode(), method=method,
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def snapshot(state) -> list[dict]:
    pages = client(state, "dynamodb").get_paginator("scan").paginate(TableName=state["table_name"],
                                                                      ConsistentRead=True)
    return sorted((item for page in pages for item in page["Items"]), key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def drain(sqs, url: str) -> list[dict]:
    found = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages"):
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def test_no_attack_changes_the_table_or_publishes_and_none_gets_a_5xx(served):  # noqa: F811
    state, _, process = served
    sqs, sns = client(state, "sqs"), client(state, "sns")
    watcher = sqs.create_queue(QueueName="attack-watcher")["QueueUrl"]
    watcher_arn = sqs.get_queue_attributes(QueueUrl=watcher, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=state["topic_arn"], Protocol="sqs", Endpoint=watcher_arn,
                  Attributes={"RawMessageDelivery": "true"})

    genuine = json.dumps([f.message("queued", message_id="MMgenuine")])
    assert send(state, genuine) == 200
    table, published = snapshot(state), drain(sqs, watcher)
    assert [n["status"] for n in published] == ["queued"]

    forged = json.dumps([f.message("read", message_id="MMgenuine", seconds=60)])
    foreign = f.message("delivered", message_id="MMgenuine", seconds=30)
    foreign["source"] = f"/2010-04-01/Accounts/{THEIRS}/Messages/MMgenuine"
    nan = json.dumps([f.message("read", message_id="MMgenuine", seconds=90)]).replace('"attempt": "1"', '"attempt": NaN')
    attacks = {
        "unsigned": send(state, forged, token=None),
        "wrong token": send(state, forged, token="guessed-token"),
        "key null": send(state, forged, token="null"),
        "captured signature, forged body": send(state, genuine, sent_body=forged),
        "captured signature, extra query": send(state, genuine, sent_query=f"x=1&bodySHA256={body_sha256(genuine)}"),
        "replay": send(state, genuine),
        "foreign account, signed": send(state, json.dumps([foreign])),
        "NaN, signed": send(state, nan),
        "GET": send(state, forged, method="GET"),
        "DELETE": send(state, forged, method="DELETE"),
        "/EVENTS": send(state, forged, path="/EVENTS"),
        "/events/": send(state, forged, path="/events/"),
        "/other": send(state, forged, path="/other"),
    }
    assert all(code < 500 for code in attacks.values()), attacks
    assert attacks["replay"] == 200  # a duplicate Twilio sends again is acknowledged, and changes nothing
    assert {name: code for name, code in attacks.items() if name != "replay" and code not in (400, 403, 404, 405)} == {}

    # The stream: another account's events and a non-JSON number, put where Twilio's role writes.
    kinesis = client(state, "kinesis")
    not_json = kinesis_payload(f.message("read", message_id="MMgenuine", seconds=90), data_as_string=False)
    for record in (kinesis_payload(foreign), not_json.replace(b'"attempt":"1"', b'"attempt":NaN')):
        kinesis.put_record(StreamName=state["stream_name"], Data=record, PartitionKey="MMgenuine")
    reasons: list[str] = []
    deadline = time.monotonic() + DEAD_LETTER_SECONDS
    while len(reasons) < 4 and time.monotonic() < deadline:
        reasons += [letter["reason"] for letter in drain(sqs, state["dead_letter_queue_url"])]
        time.sleep(0.3)
    # Through the webhook: the foreign event and the NaN body; through the stream: the same two.
    assert sorted(reasons) == ["foreign_account", "foreign_account", "invalid_payload", "invalid_payload"]

    after = snapshot(state)
    assert len(after) == len(table), [i["pk"]["S"] + " " + i["sk"]["S"] for i in after]
    for old, new in zip(table, after):
        changed = {k for k, v in new.items() if old.get(k) != v} | (old.keys() - new.keys())
        # The replay writes its (identical) history item again, stamping the latest receipt: known, H12's store.
        assert changed <= ({"received_at"} if old["sk"]["S"].startswith("event#") else set()), (old["sk"], changed)
    assert drain(sqs, watcher) == []
    for log in state["logs"].values():
        text = Path(log).read_text()
        assert LOCAL_TEST_AUTH_TOKEN not in text
    assert process.poll() is None, "the local stack died under attack"
