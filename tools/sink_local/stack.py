"""The template's resources in an AWS stand-in (moto), and readers for what the functions left there.

Shared by `twilio-sink run`, `twilio-sink serve` and the tests, so all of them exercise the same stack, built from
template.yaml: every resource the functions use is created from its own definition (the table's keys
and indexes, the stream's mode), and each function's environment is its template `Environment`, every
`!Ref`/`!GetAtt` resolved to the resource created here. Nothing is configured twice.
"""

import importlib.util
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import boto3

from sink_dev.paths import ROOT
from sink_dev.samples import SAMPLE_ACCOUNT_SID, SAMPLE_SUBACCOUNT_SID
from sink_dev.template import load_template, table_create_kwargs

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
STACK_NAME = "twilio-event-sink-local"
FAKE_CREDENTIALS = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
FUNCTIONS = ("StreamConsumerFunction", "WebhookFunction", "ReconcilerFunction")
# The template's required parameters, as the local stack answers them (a deploy asks the operator).
LOCAL_PARAMETERS = {"TwilioAccountSids": f"{SAMPLE_ACCOUNT_SID},{SAMPLE_SUBACCOUNT_SID}"}


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
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:local-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    deadline: float | None = None  # time.monotonic() when the function's timeout runs out

    def get_remaining_time_in_millis(self) -> int:
        if self.deadline is None:
            return 60_000
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass
class Template:
    """template.yaml with parameter values (defaults, then overrides) and its conditions evaluated."""

    body: dict = field(default_factory=load_template)
    overrides: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        unknown = set(self.overrides) - set(self.body.get("Parameters", {}))
        if unknown:
            raise ValueError(f"unknown template parameter(s): {', '.join(sorted(unknown))}")

    @property
    def resources(self) -> dict[str, dict]:
        return self.body["Resources"]

    def parameter(self, name: str) -> str:
        if name in self.overrides:
            return str(self.overrides[name])
        return str(self.body["Parameters"][name].get("Default", ""))

    def condition_holds(self, logical_id: str) -> bool:
        """Whether a resource is created (it has no Condition, or its Condition holds)."""
        condition = self.resources[logical_id].get("Condition")
        return not condition or self.condition(condition)

    def condition(self, name: str) -> bool:
        return bool(self.evaluate(self.body["Conditions"][name]))

    def evaluate(self, value: Any, resolve_resource=None) -> Any:
        """A value with Ref (parameters, pseudo parameters, resources), GetAtt, If, Equals, Not, Sub resolved."""
        if isinstance(value, list):
            return [self.evaluate(v, resolve_resource) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Ref", "Fn::", "Condition")):
            return {name: self.evaluate(v, resolve_resource) for name, v in value.items()}
        ((function, argument),) = value.items()
        if function == "Ref":
            if argument in self.body.get("Parameters", {}):
                return self.parameter(argument)
            if argument == "AWS::Region":
                return REGION
            if argument == "AWS::StackName":
                return STACK_NAME
            if argument == "AWS::NoValue":
                return None
            if resolve_resource is None:
                raise ValueError(f"!Ref {argument} needs a created resource")
            return resolve_resource(argument, None)
        if function == "Fn::GetAtt":
            if resolve_resource is None:
                raise ValueError(f"!GetAtt {argument} needs a created resource")
            return resolve_resource(argument[0], argument[1])
        if function == "Fn::If":
            name, when_true, when_false = argument
            return self.evaluate(when_true if self.condition(name) else when_false, resolve_resource)
        if function == "Fn::Equals":
            left, right = (self.evaluate(v, resolve_resource) for v in argument)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not self.evaluate(argument[0], resolve_resource)
        if function == "Condition":
            return self.condition(argument)
        if function == "Fn::Sub" and isinstance(argument, str):
            return re.sub(r"\$\{([\w:]+)\}", lambda name: str(self.evaluate({"Ref": name[1]}, resolve_resource)), argument)
        return value


class Stack:
    """Creates the template's resources in moto: inside an active `mock_aws()`, or in a moto server
    given its `endpoint_url`.
    """

    def __init__(self, auth_token: str, endpoint_url: str | None = None,
                 parameters: dict[str, str] | None = None):
        self.template = Template(overrides=LOCAL_PARAMETERS | (parameters or {}))
        self.endpoint_url = endpoint_url
        self.client_kwargs = {"region_name": REGION} | ({"endpoint_url": endpoint_url} if endpoint_url else {})
        self.ddb = self.client("dynamodb")
        self.sqs = self.client("sqs")
        self.sns = self.client("sns")
        self.kinesis = self.client("kinesis")
        self.physical: dict[str, dict[str, str]] = {}  # logical id -> {"Ref": …, attribute: …}
        self._create(auth_token)
        # Notifications are observed the way a subscriber would: an SQS queue subscribed to the topic,
        # a FIFO queue for a FIFO topic (the subscriber that keeps its order and deduplication).
        subscriber = {"QueueName": f"{STACK_NAME}-subscriber"}
        if self.topic_arn.endswith(".fifo"):
            subscriber = {"QueueName": f"{STACK_NAME}-subscriber.fifo", "Attributes": {"FifoQueue": "true"}}
        self.subscriber_url = self.sqs.create_queue(**subscriber)["QueueUrl"]
        subscriber_arn = self._queue_arn(self.subscriber_url)
        self.sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=subscriber_arn)
        # What the in-process tests need of both functions' environments (not Powertools' settings).
        self.env = {
            name: value
            for logical_id in FUNCTIONS
            if self.template.condition_holds(logical_id)
            for name, value in self.function_environment(logical_id).items()
            if not name.startswith(("POWERTOOLS_", "AWS_"))
        }

    def client(self, service: str):
        return boto3.client(service, **self.client_kwargs)

    # ------------------------------------------------------------------------------ creation

    def _create(self, auth_token: str) -> None:
        for logical_id, resource in self.template.resources.items():
            condition = resource.get("Condition")
            if condition and not self.template.condition(condition):
                continue
            create = self._CREATORS.get(resource["Type"])
            if create:
                self.physical[logical_id] = create(self, logical_id, resource.get("Properties", {}), auth_token)

    def _name(self, logical_id: str) -> str:
        return f"{STACK_NAME}-{logical_id}"

    def _table(self, logical_id: str, props: dict, _token: str) -> dict:
        name = self._name(logical_id)
        self.ddb.create_table(**table_create_kwargs(self.template.body, logical_id, table_name=name))
        arn = self.ddb.describe_table(TableName=name)["Table"]["TableArn"]
        return {"Ref": name, "Arn": arn}

    def _topic(self, logical_id: str, props: dict, _token: str) -> dict:
        name = self.template.evaluate(props.get("TopicName")) or self._name(logical_id)
        # The FIFO settings, as the template gives them (absent for a standard topic).
        attributes = {
            attribute: str(value).lower() if isinstance(value, bool) else str(value)
            for attribute in ("FifoTopic", "ContentBasedDeduplication", "FifoThroughputScope")
            if (value := self.template.evaluate(props.get(attribute))) is not None
        }
        return {"Ref": self.sns.create_topic(Name=name, Attributes=attributes)["TopicArn"], "TopicName": name}

    def _queue(self, logical_id: str, props: dict, _token: str) -> dict:
        name = self._name(logical_id)
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        return {"Ref": url, "QueueName": name, "Arn": self._queue_arn(url)}

    def _secret(self, logical_id: str, props: dict, token: str) -> dict:
        # Holds the documented local test token instead of the template's random placeholder, so
        # deliveries signed with it verify.
        value = token if logical_id == "AuthTokenSecret" else props["GenerateSecretString"]["SecretStringTemplate"]
        arn = self.client("secretsmanager").create_secret(Name=self._name(logical_id), SecretString=value)["ARN"]
        return {"Ref": arn, "Id": arn}

    def _stream(self, logical_id: str, props: dict, _token: str) -> dict:
        name = self._name(logical_id)
        mode = self.template.evaluate(props.get("StreamModeDetails", {}).get("StreamMode")) or "PROVISIONED"
        kwargs = {"StreamName": name, "StreamModeDetails": {"StreamMode": mode}}
        if mode == "PROVISIONED":
            kwargs["ShardCount"] = int(self.template.evaluate(props.get("ShardCount")) or 1)
        self.kinesis.create_stream(**kwargs)
        arn = self.kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
        return {"Ref": name, "Arn": arn}

    _CREATORS = {
        "AWS::DynamoDB::Table": _table,
        "AWS::SNS::Topic": _topic,
        "AWS::SQS::Queue": _queue,
        "AWS::SecretsManager::Secret": _secret,
        "AWS::Kinesis::Stream": _stream,
    }

    def _queue_arn(self, url: str) -> str:
        return self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    # ------------------------------------------------------------------------------ what the template says

    def resolve(self, value: Any) -> Any:
        return self.template.evaluate(value, self._physical)

    def _physical(self, logical_id: str, attribute: str | None) -> str:
        if logical_id in FUNCTIONS:  # a function's own name (alarms, outputs): served locally under its id
            return logical_id
        try:
            return self.physical[logical_id][attribute or "Ref"]
        except KeyError:
            raise ValueError(f"the local stack has no {logical_id}{'.' + attribute if attribute else ''}") from None

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """A function's Environment.Variables (Globals, then its own), resolved against this stack."""
        globals_ = self.template.body.get("Globals", {}).get("Function", {})
        own = self.template.resources[logical_id]["Properties"]
        variables = globals_.get("Environment", {}).get("Variables", {}) | own.get("Environment", {}).get(
            "Variables", {})
        resolved = {name: self.resolve(value) for name, value in variables.items()}
        return {name: str(value) for name, value in resolved.items() if value is not None}  # None: AWS::NoValue

    def event_source(self, logical_id: str, event_type: str) -> dict:
        """The properties of a function's event source of `event_type` (Kinesis, HttpApi), resolved."""
        for source in self.template.resources[logical_id]["Properties"].get("Events", {}).values():
            if source["Type"] == event_type:
                return {name: self.resolve(value) for name, value in source["Properties"].items()}
        raise ValueError(f"{logical_id} has no {event_type} event in template.yaml")

    def function_timeout(self, logical_id: str) -> int:
        own = self.template.resources[logical_id]["Properties"]
        return int(self.resolve(own.get("Timeout", self.template.body.get("Globals", {}).get("Function", {}).get(
            "Timeout", 3))))

    @property
    def table_name(self) -> str:
        return self.physical["StatusTable"]["Ref"]

    @property
    def topic_arn(self) -> str:
        return self.physical["NotificationTopic"]["Ref"]

    @property
    def dlq_url(self) -> str:
        return self.physical["DeadLetterQueue"]["Ref"]

    @property
    def secret_arn(self) -> str:
        return self.physical["AuthTokenSecret"]["Ref"]

    # ------------------------------------------------------------------------------ readers

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

    def stream_failures(self) -> list[dict]:
        return self._drain(self.physical["StreamFailureQueue"]["Ref"])
