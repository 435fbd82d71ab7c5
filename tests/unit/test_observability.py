"""Tracing costs no import where it is off, and still traces each invocation where it is on.

Each case imports a function's entry point in a fresh interpreter: what is imported at init is the point.
"""

import json
import os
import socket
import subprocess
import sys

import pytest

from sink_dev.paths import ROOT

INVOKE = """
import json, sys
import app

class Context:
    function_name = "webhook"; memory_limit_in_mb = 512; aws_request_id = "request-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:webhook"
    def get_remaining_time_in_millis(self): return 8000

# A route the webhook does not serve: answered without any AWS call.
event = {"version": "2.0", "routeKey": "GET /elsewhere", "rawPath": "/elsewhere", "rawQueryString": "",
         "headers": {"host": "example.com"}, "isBase64Encoded": False,
         "requestContext": {"http": {"method": "GET", "path": "/elsewhere", "sourceIp": "127.0.0.1"},
                            "requestId": "r1", "stage": "$default"}}
answer = app.lambda_handler(event, Context())
print(json.dumps({"answered": "statusCode" in answer, "xray_imported": "aws_xray_sdk" in sys.modules}))
"""


def run_webhook(environment: dict[str, str]) -> dict:
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / "webhook"), str(ROOT / "layers" / "core")]),
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "STATUS_TABLE_NAME": "table", "TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:topic",
        "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dead-letters",
        "POWERTOOLS_SERVICE_NAME": "webhook", "POWERTOOLS_METRICS_NAMESPACE": "TwilioEventSink",
    } | environment
    result = subprocess.run([sys.executable, "-c", INVOKE], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("switch", [
    {"POWERTOOLS_TRACE_DISABLED": "1", "LAMBDA_TASK_ROOT": "/var/task"},  # turned off
    {},  # not in Lambda
    {"AWS_SAM_LOCAL": "true", "LAMBDA_TASK_ROOT": "/var/task"},  # sam local invoke
])
def test_where_tracing_is_off_the_xray_sdk_is_never_imported(switch):
    assert run_webhook(switch) == {"answered": True, "xray_imported": False}


def test_in_lambda_with_tracing_on_each_invocation_sends_its_handler_subsegment():
    # The X-Ray daemon Lambda runs beside the function, stood in by a UDP socket on loopback.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        daemon.settimeout(30)
        answer = run_webhook({
            "LAMBDA_TASK_ROOT": "/var/task",
            "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
        })
        header, document = daemon.recv(65536).decode().split("\n", 1)

    assert answer == {"answered": True, "xray_imported": True}
    assert json.loads(header) == {"format": "json", "version": 1}
    subsegment = json.loads(document)
    assert subsegment["name"] == "## lambda_handler"
    assert subsegment["parent_id"] == "53995c3f42cd8ad8"
    assert subsegment["annotations"] == {"ColdStart": True, "Service": "webhook"}
