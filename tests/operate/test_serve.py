"""`make serve` as a user drives it: started on ephemeral 127.0.0.1 ports, a delivery signed with the
`twilio` package POSTed over HTTP and a record put on the local stream, both visible through the
status command; then stopped with Ctrl-C (SIGINT).
"""

import base64
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import boto3
import pytest
from twilio.request_validator import RequestValidator

from sink_dev.paths import ROOT
from sink_dev.samples import LOCAL_TEST_AUTH_TOKEN, body_sha256, kinesis_payload
from sink_ops import status
from tests.support.factories import message, operation

STARTUP_SECONDS = 120
ARRIVAL_SECONDS = 60


@pytest.fixture
def served(tmp_path):
    state_file = tmp_path / "stack.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "sink_local.serve", "--port", "0", "--aws-port", "0", "--state-file", str(state_file),
         "--auth-token", LOCAL_TEST_AUTH_TOKEN],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + STARTUP_SECONDS
    while not state_file.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if not state_file.exists():
        process.kill()
        pytest.fail(f"make serve did not start:\n{process.communicate()[0]}")
    yield json.loads(state_file.read_text()), state_file, process
    if process.poll() is None:
        process.kill()
        process.communicate()


def show(state_file, entity: str, entity_id: str, capsys, *expected: str) -> tuple[int, str]:
    """`sink_ops.status show`, retried while the event is on its way (the stream is polled) until it shows
    every `expected` text: the state is written before the history, so a read between them lacks it."""
    deadline = time.monotonic() + ARRIVAL_SECONDS
    while True:
        code = status.main(["--state-file", str(state_file), "show", entity, entity_id])
        out = capsys.readouterr().out
        if (code == 0 and all(text in out for text in expected)) or time.monotonic() > deadline:
            return code, out
        time.sleep(0.3)


def test_signed_post_and_stream_record_reach_the_status_command_then_ctrl_c_stops(served, capsys):
    state, state_file, process = served
    assert state["webhook_url"].startswith("http://127.0.0.1:") and state["endpoint_url"].startswith("http://127.0.0.1:")

    # A delivery exactly as Twilio sends it: bodySHA256 in the query, the URL signed with the auth token.
    body = json.dumps([message("queued", message_id="MMwebhook", operation_id="OPserve")])
    url = f"{state['public_url']}?bodySHA256={body_sha256(body)}"
    signature = RequestValidator(LOCAL_TEST_AUTH_TOKEN).compute_signature(url, {})
    request = urllib.request.Request(state["webhook_url"] + "?" + url.partition("?")[2], data=body.encode(),
                                     method="POST", headers={"Content-Type": "application/json",
                                                             "X-Twilio-Signature": signature})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        assert json.loads(response.read())["applied"] == 1

    forged = urllib.request.Request(request.full_url, data=body.replace("queued", "read").encode(), method="POST",
                                    headers={"Content-Type": "application/json", "X-Twilio-Signature": signature})
    with pytest.raises(urllib.error.HTTPError) as rejected:
        urllib.request.urlopen(forged, timeout=30)
    assert rejected.value.code == 403

    kinesis = boto3.client("kinesis", region_name=state["region"], endpoint_url=state["endpoint_url"],
                           aws_access_key_id="testing", aws_secret_access_key="testing")
    record = operation("processing", operation_id="OPserve")
    kinesis.put_record(StreamName=state["stream_name"], Data=kinesis_payload(record), PartitionKey=record["id"])
    kinesis.put_record(StreamName=state["stream_name"], Data=kinesis_payload(message(
        "delivered", message_id="MMwebhook", seconds=5, operation_id="OPserve")), PartitionKey="MMwebhook")

    code, out = show(state_file, "operation", "OPserve", capsys, "operation OPserve: processing", "kinesis")
    assert code == 0 and "operation OPserve: processing" in out and "kinesis" in out
    code, out = show(state_file, "message", "MMwebhook", capsys, "webhook")
    assert code == 0 and "webhook" in out
    assert status.main(["--state-file", str(state_file), "operation", "OPserve"]) == 0
    listed = capsys.readouterr().out
    assert "MMwebhook" in listed and "Messages (1:" in listed

    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "stopped." in output and "Traceback" not in output
    assert "webhook  POST /events" in output and "→ 403" in output and "kinesis  shardId" in output
    assert not state_file.exists()


def test_serve_with_the_twilio_stand_in_points_the_reconciler_at_it(tmp_path):
    from sink_local.twilio_api import API_KEY_SECRET, API_KEY_SID

    # Given `make serve` asked for the Twilio stand-in
    state_file = tmp_path / "stack.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "sink_local.serve", "--port", "0", "--aws-port", "0", "--state-file", str(state_file),
         "--twilio-api-port", "0"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not state_file.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert state_file.exists(), process.communicate(timeout=5)[0] if process.poll() is not None else "no start"
        state = json.loads(state_file.read_text())

        # Then the reconciler runs too, its client pointed at the stand-in, which answers with its key only
        url = state["twilio_api_url"]
        assert state["environments"]["ReconcilerFunction"]["TWILIO_API_BASE_URL"] == url
        assert "ReconcilerFunction" in state["logs"]
        request = urllib.request.Request(f"{url}/messaging/v1/Tollfree/Verifications/HH{'1' * 32}")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 401
        credentials = base64.b64encode(f"{API_KEY_SID}:{API_KEY_SECRET}".encode()).decode()
        request.add_header("Authorization", f"Basic {credentials}")
        with pytest.raises(urllib.error.HTTPError) as unknown:  # authenticated: no such verification
            urllib.request.urlopen(request, timeout=5)
        assert unknown.value.code == 404
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)


def test_other_methods_and_paths_get_the_functions_own_answers_through_the_local_api(served):
    # The local API routes as API Gateway does the template's routes: POST /events, and $default
    state, _, _ = served
    url = state["webhook_url"]

    def answer(target: str, method: str) -> tuple[int, str | None, dict]:
        try:
            with urllib.request.urlopen(urllib.request.Request(target, data=b"{}", method=method), timeout=30) as r:
                return r.status, r.headers.get("Allow"), json.loads(r.read())
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Allow"), json.loads(error.read())

    assert answer(url, "GET") == (405, "POST", {"error": "only POST"})
    assert answer(url, "DELETE")[:2] == (405, "POST")
    code, _, body = answer(url.replace("/events", "/event"), "POST")
    assert (code, body) == (404, {"error": "not found: Twilio's sink URL ends in /events"})
