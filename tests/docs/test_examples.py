"""The examples in docs/examples/ are real files, run here against the real handlers on moto."""

import json

import boto3

from sink_dev.paths import ROOT
from sink_dev.samples import load_samples
from tests.support.sinks import consume, post

EXAMPLES = ROOT / "docs" / "examples"


def example(name: str):
    return json.loads((EXAMPLES / name).read_text())


def test_the_notification_example_is_what_the_seed_operation_completed_publishes(stack, consumer, context):
    expected = example("notification.json")
    assert not consume(consumer, context, load_samples())["batchItemFailures"]
    [published] = [n for n in stack.notifications() if n["event_id"] == expected["event_id"]]
    published.pop("_attributes")
    assert published == expected


def test_the_filter_policy_example_lets_through_failed_and_undelivered_messages_only(stack, consumer, context):
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="failures-only")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("sns").subscribe(TopicArn=stack.topic_arn, Protocol="sqs", Endpoint=arn,
                                  Attributes={"FilterPolicy": json.dumps(example("filter-policy.json"))})
    consume(consumer, context, load_samples())
    everything = stack.notifications()
    received = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        received += [json.loads(json.loads(m["Body"])["Message"])["event_id"] for m in batch]
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    wanted = [n["event_id"] for n in everything if n["entity"] == "message" and n["status"] in ("failed", "undelivered")]
    assert wanted and sorted(received) == sorted(wanted) and len(wanted) < len(everything)


def test_the_rotation_example_accepts_both_tokens_and_nothing_else(stack, webhook, context):
    secret = (EXAMPLES / "auth-token-rotation.json").read_text()
    secret = secret.replace("<new token>", "new-token-value").replace("<old token>", "old-token-value")
    boto3.client("secretsmanager").put_secret_value(SecretId=stack.secret_arn, SecretString=secret)
    samples = load_samples()
    assert post(webhook, context, samples[:1], token="new-token-value")[0] == 200
    assert post(webhook, context, samples[1:2], token="old-token-value")[0] == 200
    assert post(webhook, context, samples[2:3], token="twilio-sink-local-test-token")[0] == 403


def test_the_subaccount_filter_policy_example_routes_that_subaccounts_changes_only(stack, consumer, context):
    # Contract 3's `account_sid` attribute: an ISV subscribes each subaccount's queue with its own policy
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="one-subaccount")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = example("subaccount-filter-policy.json")
    boto3.client("sns").subscribe(TopicArn=stack.topic_arn, Protocol="sqs", Endpoint=arn,
                                  Attributes={"FilterPolicy": json.dumps(policy)})
    consume(consumer, context, load_samples())
    everything = stack.notifications()
    received = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        received += [json.loads(json.loads(m["Body"])["Message"])["event_id"] for m in batch]
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    wanted = [n["event_id"] for n in everything if n["_attributes"].get("account_sid") in policy["account_sid"]]
    assert wanted and sorted(received) == sorted(wanted) and len(wanted) < len(everything)
