"""The functions run from `sam build` output, with only the environment the template gives them.

The build is the template's for this machine's architecture (sink_dev.build), and each function runs in a
fresh interpreter that cannot write bytecode, whose import path is just its build folder, the built
layer, and the packages the Lambda Python runtime itself provides (boto3 and its dependencies). The
environment is the function's `Environment.Variables` from the template, each `!Ref`/`!GetAtt` resolved
to a resource created in a moto server, plus what Lambda sets (region, credentials) and the endpoint of
that moto server. tests/template/test_sam_local_invoke.py runs the same build in SAM's container.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from moto.moto_api._internal.models import moto_api_backend
from moto.server import ThreadedMotoServer

from sink_dev.build import lambda_path
from sink_dev.paths import ROOT
from sink_dev.samples import LOCAL_TEST_AUTH_TOKEN
from sink_local.stack import Stack

# Each needs `sam build` (the SAM CLI of `make setup`): the quick loop leaves them to `make test`.
pytestmark = pytest.mark.slow

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
def stack():
    """The template's resources in a moto server, built by the same code as `make serve`."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield Stack(LOCAL_TEST_AUTH_TOKEN, endpoint_url=f"http://{host}:{port}")
    server.stop()
    # moto's servers in one process share their state: the next module's stack starts from nothing
    # (tests/template/test_sam_local_invoke.py's, when a parallel worker runs both).
    moto_api_backend.reset()


def run_built(built: Path, runtime: Path, stack: Stack, logical_id: str, event_file: Path, tmp_path: Path) -> dict:
    # The function's template environment, each !Ref/!GetAtt resolved to the moto resources, plus
    # what Lambda itself sets (region, credentials) and the moto server's endpoint.
    env = stack.function_environment(logical_id) | {
        "PATH": "/usr/bin:/bin",
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": stack.endpoint_url,
        "POWERTOOLS_TRACE_DISABLED": "1",  # no X-Ray daemon here
        "PYTHONDONTWRITEBYTECODE": "1",  # Lambda's /var/task and /opt are read-only
        "PYTHONPATH": lambda_path(built, logical_id, runtime),
    }
    (tmp_path / "driver.py").write_text(DRIVER)
    result = subprocess.run(
        [sys.executable, "-S", str(tmp_path / "driver.py"), str(event_file)],
        cwd=built.parent / logical_id, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_built_stream_consumer_processes_a_kinesis_event(host_build, runtime_packages, stack, tmp_path):
    result = run_built(host_build, runtime_packages, stack, "StreamConsumerFunction", ROOT / "events" / "kinesis" / "all.json",
                       tmp_path)
    assert result == {"batchItemFailures": []}
    assert {state["status"] for state in stack.states().values()} >= {"read", "completed", "registered"}


def test_built_webhook_answers_a_signed_delivery(host_build, runtime_packages, stack, tmp_path):
    result = run_built(host_build, runtime_packages, stack, "WebhookFunction",
                       ROOT / "events" / "webhook" / "message-queued.json", tmp_path)
    assert result["statusCode"] == 200, result


def test_the_bench_times_each_built_functions_init_and_first_invocation(host_build, runtime_packages, tmp_path):
    # The bench's cold-start figure: its script asserts that the first invocation answered well and
    # published every event, all its AWS requests answered by the fake (no client exists before it).
    from sink_bench import __main__ as bench

    events, _ = bench.first_invocation_events(tmp_path)
    for name, logical_id in bench.BUILT.items():
        init, invocation = bench.first_invocation(lambda_path(host_build, logical_id, runtime_packages), events[name])
        assert init > 0 and invocation > 0
