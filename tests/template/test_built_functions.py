"""The functions run from `sam build` output, with only the environment the template gives them.

The deployed build is arm64; this machine is x86_64, where arm64 wheels (pydantic-core) cannot load.
So the template is built once more with only its architecture switched to x86_64, and each function
runs in a fresh interpreter whose import path is just its build folder, the built layer, and the
packages the Lambda Python runtime itself provides (boto3 and its dependencies). The environment is
the function's `Environment.Variables` from the template, each `!Ref`/`!GetAtt` resolved to a
resource created in a moto server, plus what Lambda sets (region, credentials) and the endpoint of
that moto server.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from sink_dev.paths import ROOT
from sink_dev.samples import LOCAL_TEST_AUTH_TOKEN
from sink_local.stack import Stack

SAM = ROOT / ".venv-sam" / "bin" / "sam"
RUNTIME_PACKAGES = ["boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py"]

DRIVER = textwrap.dedent(
    """
    import importlib.util, json, sys
    # Only the build output and the runtime's own packages are importable here.
    assert importlib.util.find_spec("moto") is None and importlib.util.find_spec("pytest") is None
    import app

    class Context:
        function_name = "built"; memory_limit_in_mb = 512; aws_request_id = "built-request"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:built"
        def get_remaining_time_in_millis(self): return 30000

    event = json.load(open(sys.argv[1]))
    print("RESULT " + json.dumps(app.lambda_handler(event, Context())))
    """
)


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    assert SAM.exists(), f"SAM CLI missing at {SAM}: run `make setup`"
    work = tmp_path_factory.mktemp("x86")
    for name in ("functions", "layers"):
        shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    template = (ROOT / "template.yaml").read_text()
    (work / "template.yaml").write_text(template.replace("arm64", "x86_64"))
    env = os.environ | {"PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}", "SAM_CLI_TELEMETRY": "0"}
    result = subprocess.run(
        [str(SAM), "build", "--template", "template.yaml", "--build-dir", str(work / "build")],
        cwd=work, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    runtime = work / "runtime"
    runtime.mkdir()
    site = Path(boto3.__file__).parents[1]
    for package in RUNTIME_PACKAGES:
        (runtime / package).symlink_to(site / package)
    return work


@pytest.fixture(scope="module")
def stack():
    """The template's resources in a moto server, built by the same code as `make serve`."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield Stack(LOCAL_TEST_AUTH_TOKEN, endpoint_url=f"http://{host}:{port}")
    server.stop()


def run_built(build: Path, stack: Stack, logical_id: str, event_file: Path) -> dict:
    # The function's template environment, each !Ref/!GetAtt resolved to the moto resources, plus
    # what Lambda itself sets (region, credentials) and the moto server's endpoint.
    env = stack.function_environment(logical_id) | {
        "PATH": "/usr/bin:/bin",
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": stack.endpoint_url,
        "POWERTOOLS_TRACE_DISABLED": "1",  # no X-Ray daemon here
        "PYTHONPATH": ":".join(str(p) for p in (
            build / "build" / logical_id, build / "build" / "CoreLayer" / "python", build / "runtime")),
    }
    (build / "driver.py").write_text(DRIVER)
    result = subprocess.run(
        [sys.executable, "-S", str(build / "driver.py"), str(event_file)],
        cwd=build / "build" / logical_id, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_built_stream_consumer_processes_a_kinesis_event(build, stack):
    result = run_built(build, stack, "StreamConsumerFunction", ROOT / "events" / "kinesis" / "all.json")
    assert result == {"batchItemFailures": []}
    assert {state["status"] for state in stack.states().values()} >= {"read", "completed", "registered"}


def test_built_webhook_answers_a_signed_delivery(build, stack):
    result = run_built(build, stack, "WebhookFunction", ROOT / "events" / "webhook" / "message-queued.json")
    assert result["statusCode"] == 200, result
