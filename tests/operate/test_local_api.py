"""The local HTTP API builds payload-2.0 events as API Gateway does and answers as it does."""

import json
import urllib.error
import urllib.request

import pytest

from sink_dev.samples import webhook_event
from sink_local.api import HttpApi, http_api_event
from sink_local.functions import FunctionError
from sink_ops import status


def test_event_has_api_gateways_shape_raw_query_and_decoded_parameters():
    body = b'[{"id":"EZ1"}]'
    event = http_api_event("POST", "/events?a=%2Fx&bodySHA256=ab&a=2",
                           [("Host", "127.0.0.1:3000"), ("Content-Type", "application/json"), ("X-Twilio-Signature", "s"),
                            ("Cookie", "c=1; d=2")], body, "127.0.0.1", "POST /events")
    reference = webhook_event(body.decode())  # the shape tests and events/ use, from API Gateway's documentation
    assert set(event) - {"cookies"} == set(reference)
    assert set(event["requestContext"]) == set(reference["requestContext"])
    assert event["rawQueryString"] == "a=%2Fx&bodySHA256=ab&a=2"  # exactly as sent: the signature covers it
    assert event["queryStringParameters"] == {"a": "/x,2", "bodySHA256": "ab"}
    assert event["headers"]["x-twilio-signature"] == "s" and event["cookies"] == ["c=1", "d=2"]
    assert (event["body"], event["isBase64Encoded"]) == (body.decode(), False)
    assert event["requestContext"]["domainName"] == "127.0.0.1"


def test_a_binary_body_is_base64_encoded():
    event = http_api_event("POST", "/events", [("Content-Type", "application/json")], b"\xff\xfe", "1.2.3.4", "POST /events")
    assert (event["body"], event["isBase64Encoded"]) == ("//4=", True)


@pytest.fixture
def api():
    calls = []

    def invoke(event):
        calls.append(event)
        if event["rawQueryString"] == "crash":
            raise FunctionError("RuntimeError", "boom")
        return {"statusCode": 202, "headers": {"X-Answer": "yes"}, "body": json.dumps({"ok": True})}

    server = HttpApi(["POST /events"], invoke)
    server.start()
    yield server, calls
    server.stop()


def request(url: str, method: str = "POST") -> tuple[int, dict, dict]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method=method,
                                                           headers={"Content-Type": "application/json"}), timeout=10) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_the_route_invokes_the_function_and_answers_its_result(api):
    server, calls = api
    code, headers, body = request(server.url)
    assert (code, headers["x-answer"], body) == (202, "yes", {"ok": True})
    assert calls[0]["routeKey"] == "POST /events"


def test_other_routes_are_404_and_a_function_error_is_500(api):
    server, calls = api
    assert request(server.url.replace("/events", "/other"))[0] == 404
    assert request(server.url, method="GET")[0] == 404
    code, _, body = request(server.url + "?crash")
    assert (code, body) == (500, {"message": "Internal Server Error"})
    assert len(calls) == 1  # only the template's route reaches the function


def test_with_a_default_route_every_other_method_and_path_reaches_the_function_as_api_gateway_routes_them():
    calls = []
    server = HttpApi(["POST /events", "$default"], lambda event: calls.append(event) or {"statusCode": 405, "body": "{}"})
    server.start()
    try:
        assert request(server.url, method="GET")[0] == 405
        assert request(server.url.replace("/events", "/other"))[0] == 405
        assert request(server.url)[0] == 405
    finally:
        server.stop()
    assert [(c["routeKey"], c["requestContext"]["http"]["method"], c["rawPath"]) for c in calls] == [
        ("$default", "GET", "/events"), ("$default", "POST", "/other"), ("POST /events", "POST", "/events")]


def test_status_without_a_local_stack_says_how_to_start_one(tmp_path, capsys):
    assert status.main(["--state-file", str(tmp_path / "none.json"), "list"]) == 1
    assert "twilio-sink serve" in capsys.readouterr().err
