"""A cold start does only what an invocation needs (docs/performance.md#cold-start).

The import cases run each function's entry point in a fresh interpreter: what is loaded and built at
init is the point, and this test process has long loaded everything.
"""

import json
import os
import subprocess
import sys

import boto3
import pytest

from sink_dev.paths import ROOT

INSPECT = """
import json, sys
import app
from twilio_sink import registry
from twilio_sink.dead_letters import DeadLetter

models = {family.data_model for family in (*registry.FAMILIES, registry.UNMODELLED)} | {DeadLetter}
print(json.dumps({
    "modules": sorted(sys.modules),
    "built_models": sorted(model.__name__ for model in models if model.__pydantic_complete__),
}))
"""

# Every event type of every family, validated from several threads at once in a fresh interpreter:
# the models' first builds happen concurrently, as when two deliveries share a warm-up.
CONCURRENT = """
import json, sys
from concurrent.futures import ThreadPoolExecutor
from twilio_sink import envelope, registry
from twilio_sink import poison as poisons

samples = json.load(open(sys.argv[1]))
def route(sample):
    try:
        change = registry.route(envelope.to_cloudevent(sample))
        return [change.entity, change.entity_id, change.status, change.order_key]
    except poisons.Poison as poison:
        return ["poison", poison.reason, poison.detail]
with ThreadPoolExecutor(max_workers=8) as pool:
    first = list(pool.map(route, samples * 4))
print(json.dumps({"first": first, "again": [route(sample) for sample in samples * 4]}))
"""


def fresh_python(function: str, script: str, *args: str) -> dict:
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / function), str(ROOT / "layers" / "core")]),
        "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_SERVICE_NAME": function, "POWERTOOLS_METRICS_NAMESPACE": "TwilioEventSink",
    }
    result = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("function", ["stream_consumer", "webhook"])
def test_no_payload_model_is_built_at_import(function):
    # Given a fresh container, When the entry point is imported, Then no family's validator (nor the
    # dead letter's) is built yet: each is built when its first event (or dead letter) comes.
    assert fresh_python(function, INSPECT)["built_models"] == []


def test_the_stream_consumer_does_not_import_what_only_other_functions_use():
    modules = set(fresh_python("stream_consumer", INSPECT)["modules"])
    # Secrets (Powertools' parameters utility) are the webhook's and the reconciler's; X-Ray is off here.
    assert "aws_lambda_powertools.utilities.parameters" not in modules
    assert not {name for name in modules if name.split(".")[0] in ("twilio", "aws_xray_sdk")}


def test_the_webhook_checks_signatures_without_twilios_rest_client():
    modules = set(fresh_python("webhook", INSPECT)["modules"])
    assert "twilio.request_validator" in modules
    assert not {name for name in modules if name.startswith("twilio.rest") or name.split(".")[0] == "aws_xray_sdk"}


def test_deferred_models_validate_alike_when_first_built_concurrently():
    # Given every sample event, When they are first validated by 8 threads at once, Then each gives
    # what it gives once the models are built.
    result = fresh_python("stream_consumer", CONCURRENT, str(ROOT / "events" / "samples" / "cloudevents.json"))
    assert result["first"] == result["again"]
    assert {entity for entity, *_ in result["first"]} >= {"message", "operation", "brand", "call", "event"}


def test_clients_share_one_session(monkeypatch):
    # A session lists every botocore service model and parses the endpoint data: once, not per client.
    from twilio_sink import aws

    sessions = []
    real = boto3.session.Session

    def counted(*args, **kwargs):
        sessions.append(real(*args, **kwargs))
        return sessions[-1]

    monkeypatch.setattr(boto3.session, "Session", counted)
    aws.reset_clients()
    try:
        clients = [aws.client(service) for service in ("dynamodb", "sns", "sqs", "secretsmanager")]
        assert len(sessions) == 1
        assert aws.client("sns") is clients[1]
        aws.reset_clients()  # tests switch AWS environments: a reset makes a new session
        aws.client("sns")
        assert len(sessions) == 2
    finally:
        aws.reset_clients()
