"""Fuzzing the real webhook handler (against moto) with hostile bodies, headers, flags and queries.

Whatever arrives, signed or not: never an exception, never a 5xx (no AWS failure is injected, so not
even the deliberate 503), and every answer one of contract 5's. Examples are derandomized and
bounded so the suite stays deterministic and quick.
"""

import base64
import json

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from tests.support import factories as f
from tests.webhook import deliveries

FUZZ = settings(max_examples=40, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

SUMMARY = {"applied", "stale", "duplicate", "dead_lettered", "failed"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=15,
)
# CloudEvents with one field of any type: near misses reach deeper than random JSON does.
near_misses = st.builds(
    lambda event, field, value: event | {field: value} if field != "data" else event | {"data": value},
    st.sampled_from([f.message("queued"), f.operation("scheduled"), f.brand("brand-registered")]),
    st.sampled_from(["id", "type", "time", "source", "specversion", "data"]),
    json_values,
)
nested_in_data = st.integers(1, 3000).map(lambda depth: [f.message("queued") | {"data": {
    "message_id": "MM1", "tags": json.loads("[" * depth + "]" * depth)}}])
bodies = st.one_of(
    json_values.map(json.dumps),
    st.lists(near_misses, max_size=5).map(json.dumps),
    near_misses.map(json.dumps),
    st.integers(1, 100_000).map(lambda depth: "[" * depth + "]" * depth),  # deep nesting
    nested_in_data.map(json.dumps),
    st.integers(1, 3).map(lambda n: json.dumps([f.message("queued") | {"data": {  # huge events
        "message_id": f"MM{n}", "content": {"text": "x" * 250_000}}}] * n)),
    st.text(max_size=200),
    st.binary(max_size=200),  # mostly invalid UTF-8
    st.just('[{"id": "\\ud800"}]'),  # a lone surrogate escape: valid JSON, not encodable text
)
header_values = st.one_of(st.text(max_size=40), st.integers(), st.none(), st.lists(st.text(max_size=5), max_size=2))
headers = st.dictionaries(
    st.sampled_from(["x-twilio-signature", "X-Twilio-Signature", "x-twilio-webhooks-signature-settings",
                     "content-type", "host", "user-agent"]) | st.text(max_size=10),
    header_values, max_size=4)
settings_headers = st.none() | st.sampled_from([
    "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256", "algorithm=HMAC_MD5", "algorithm=", ",,,=", "key="])
queries = st.lists(st.tuples(st.sampled_from(["a", "bodySHA256", "b c", "%zz", "é"]), st.text(max_size=8)),
                   max_size=4)
base64_flags = st.sampled_from([None, True, False, "true", 1])


def contract_5(response: dict) -> None:
    assert set(response) >= {"statusCode", "body"}
    status, answer = response["statusCode"], json.loads(response["body"])
    event(f"answered {status}")  # shown by --hypothesis-show-statistics
    assert status in (200, 400, 403), (status, answer)
    if status == 403:
        assert answer == {"error": "invalid signature"}
    elif status == 400:
        assert answer["problems"] and set(answer) >= SUMMARY
        assert all({"index", "reason", "detail"} <= set(problem) for problem in answer["problems"])
    else:
        assert set(answer) == SUMMARY and answer["failed"] == 0


@pytest.fixture(scope="module")
def fuzz_stack():
    """One moto stack for every example (the answers, not the table, are under test)."""
    import os

    from moto import mock_aws

    from sink_dev.samples import LOCAL_TEST_AUTH_TOKEN
    from sink_local.stack import Stack
    from twilio_sink import aws, config, pipeline

    saved = dict(os.environ)
    with mock_aws():
        stack = Stack(LOCAL_TEST_AUTH_TOKEN)
        os.environ.update(stack.env)
        aws.reset_clients(), config.settings.cache_clear(), pipeline.default_pipeline.cache_clear()
        yield stack
    os.environ.clear()
    os.environ.update(saved)
    aws.reset_clients(), config.settings.cache_clear(), pipeline.default_pipeline.cache_clear()


# The extremes, always run whatever the draw: deep nesting (body, and inside `data`), huge events,
# invalid UTF-8, a lone surrogate escape.
EXTREMES = ["[" * 100_000 + "]" * 100_000,
            json.dumps([f.message("queued") | {"data": {"message_id": "MM1", "tags": [[[[]]]]}}]).replace(
                "[[[[]]]]", "[" * 900 + "]" * 900),
            json.dumps([f.message("queued") | {"data": {"message_id": "MM9", "content": {"text": "x" * 300_000}}}] * 4),
            b'[{"id": "\xff\xfe"}]', '[{"id": "\\ud800"}]']


@FUZZ
@given(body=bodies, deployment=st.sampled_from(deliveries.DEPLOYMENTS), settings_header=settings_headers,
       base64_body=st.booleans())
@example(body=EXTREMES[0], deployment=deliveries.DEFAULT, settings_header=None, base64_body=False)
@example(body=EXTREMES[1], deployment=deliveries.DEFAULT, settings_header=None, base64_body=False)
@example(body=EXTREMES[2], deployment=deliveries.DEFAULT, settings_header=None, base64_body=True)
@example(body=EXTREMES[3], deployment=deliveries.DEFAULT, settings_header=None, base64_body=False)
@example(body=EXTREMES[4], deployment=deliveries.DEFAULT, settings_header=None, base64_body=False)
def test_signed_bodies_of_any_shape_get_a_contract_answer(fuzz_stack, webhook, context, body, deployment,
                                                         settings_header, base64_body):
    if deployment.public_base_url:  # the shapes needing PUBLIC_BASE_URL are covered in integration tests
        deployment = deliveries.DEFAULT
    algorithm = "HMAC_SHA256" if settings_header and "SHA256" in settings_header else None
    event = deliveries.event_for(deployment, body, algorithm=algorithm, settings_header=settings_header,
                                 base64_body=base64_body or None)
    response = webhook.lambda_handler(event, context)
    contract_5(response)
    if settings_header is None or algorithm:
        # Signed the way Twilio signs: it is never refused for its content.
        assert response["statusCode"] != 403


@FUZZ
@given(body=bodies, extra_headers=headers, flag=base64_flags, query=queries, sign=st.booleans(),
       body_type=st.sampled_from(["text", "none", "number", "object"]))
def test_hostile_requests_are_answered_never_raised(fuzz_stack, webhook, context, body, extra_headers, flag,
                                                   query, sign, body_type):
    event = deliveries.event_for(deliveries.DEFAULT, body)
    if not sign:
        del event["headers"]["x-twilio-signature"]
    event["headers"] |= extra_headers
    event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query) + "&" + event["rawQueryString"]
    event["isBase64Encoded"] = flag
    event["body"] = {"text": event["body"], "none": None, "number": 42, "object": {"a": body[:5]}}[body_type]
    contract_5(webhook.lambda_handler(event, context))


@FUZZ
@given(body=bodies, query=queries, flag=base64_flags)
def test_rest_api_requests_of_any_shape_are_answered_never_raised(fuzz_stack, webhook, context, body, query, flag):
    event = deliveries.event_for(deliveries.BY_NAME["rest-query-rfc3986"], body)
    for name, value in query:  # duplicate and odd parameters, decoded as REST API hands them over
        event["multiValueQueryStringParameters"].setdefault(name, []).append(value)
    event["isBase64Encoded"] = flag if flag is not None else event["isBase64Encoded"]
    contract_5(webhook.lambda_handler(event, context))


def test_the_fuzz_reaches_every_answer(fuzz_stack, webhook, context):
    """The strategies above are not vacuous: signed good, signed poison and forged all occur."""
    good = deliveries.event_for(deliveries.DEFAULT, json.dumps([f.message("queued", message_id="MM-F")]))
    poison = deliveries.event_for(deliveries.DEFAULT, base64.b64decode("/w=="))
    forged = deliveries.event_for(deliveries.DEFAULT, "[]", token="forged")
    assert [webhook.lambda_handler(e, context)["statusCode"] for e in (good, poison, forged)] == [200, 400, 403]
