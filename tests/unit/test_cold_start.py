"""A cold start does only what an invocation needs (docs/performance.md#cold-start).

The import cases run each function's entry point in a fresh interpreter: what is loaded and built at
init is the point, and this test process has long loaded everything.
"""

import json
import os
import subprocess
import sys

import boto3

from sink_dev.paths import ROOT

INSPECT = """
import json, sys
import app
print(json.dumps({"modules": sorted(sys.modules)}))
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


def test_the_stream_consumer_does_not_import_what_only_other_functions_use():
    modules = set(fresh_python("stream_consumer", INSPECT)["modules"])
    # Secrets (Powertools' parameters utility) are the webhook's and the reconciler's; X-Ray is off here.
    assert "aws_lambda_powertools.utilities.parameters" not in modules
    assert not {name for name in modules if name.split(".")[0] in ("twilio", "aws_xray_sdk")}


def test_the_webhook_checks_signatures_without_twilios_rest_client():
    modules = set(fresh_python("webhook", INSPECT)["modules"])
    assert "twilio.request_validator" in modules
    assert not {name for name in modules if name.startswith("twilio.rest") or name.split(".")[0] == "aws_xray_sdk"}


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
