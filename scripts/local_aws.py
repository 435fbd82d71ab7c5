"""The template's resources in an AWS stand-in (moto), and readers for what the functions left there.

Shared by `make run` and the tests, so both exercise the same stack built from template.yaml.
"""

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import boto3

from scripts.cfn import load_template, table_create_kwargs

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
FAKE_CREDENTIALS = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def load_function(name: str):
    """Import functions/<name>/app.py under a unique module name (both files are app.py)."""
    spec = importlib.util.spec_from_file_location(f"{name}_app", ROOT / "functions" / name / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class LambdaContext:
    function_name: str = "local-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:local-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class Stack:
    """Creates the resources; call inside an active moto mock."""

    def __init__(self, auth_token: str):
        template = load_template(ROOT / "template.yaml")
        self.ddb = boto3.client("dynamodb", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.sns = boto3.client("sns", region_name=REGION)
        self.table_name = "status-table"
        self.ddb.create_table(**table_create_kwargs(template, table_name=self.table_name))
        self.topic_arn = self.sns.create_topic(Name="notifications")["TopicArn"]
        self.dlq_url = self.sqs.create_queue(QueueName="dead-letters")["QueueUrl"]
        # Notifications are observed the way a subscriber would: an SQS queue subscribed to the topic.
        self.subscriber_url = self.sqs.create_queue(QueueName="subscriber")["QueueUrl"]
        subscriber_arn = self.sqs.get_queue_attributes(QueueUrl=self.subscriber_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=subscriber_arn)
        self.secret_arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="twilio-auth-token", SecretString=auth_token
        )["ARN"]
        self.env = {
            "STATUS_TABLE_NAME": self.table_name,
            "TOPIC_ARN": self.topic_arn,
            "DEAD_LETTER_QUEUE_URL": self.dlq_url,
            "AUTH_TOKEN_SECRET_ARN": self.secret_arn,
            "PUBLIC_BASE_URL": "",
        }

    def items(self) -> list[dict]:
        from twilio_sink.store import from_item

        pages = self.ddb.get_paginator("scan").paginate(TableName=self.table_name, ConsistentRead=True)
        return [from_item(item) for page in pages for item in page["Items"]]

    def states(self) -> dict[str, dict]:
        return {item["pk"]: item for item in self.items() if item["sk"] == "state"}

    def history(self, pk: str) -> list[dict]:
        return sorted((i for i in self.items() if i["pk"] == pk and i["sk"] != "state"), key=lambda i: i["sk"])

    def _drain(self, url: str) -> list[dict]:
        messages = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
            if not batch.get("Messages"):
                return messages
            for message in batch["Messages"]:
                messages.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def notifications(self) -> list[dict]:
        """Contract-3 bodies (with the SNS message attributes under `_attributes`), in order."""
        return [
            json.loads(e["Message"]) | {"_attributes": {k: v["Value"] for k, v in e["MessageAttributes"].items()}}
            for e in self._drain(self.subscriber_url)
        ]

    def dead_letters(self) -> list[dict]:
        return self._drain(self.dlq_url)
