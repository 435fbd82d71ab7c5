"""The real webhook handler against moto: signatures, contract-5 answers, retries."""

import base64
import json
import threading
import time

import boto3
import pytest

from sink_dev.samples import load_samples, webhook_event
from tests.support import factories as f
from tests.support.expectations import (
    assert_contract_state,
    assert_expires_after_retention,
    expected_final,
    expected_per_event,
    unpublished,
)
from tests.support.sinks import post, without_deadline
from tests.webhook import deliveries as shapes
from tests.webhook.logs import json_logs, lines

SAMPLES = load_samples()


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s["type"].rsplit(".", 2)[-2] + "." + s["type"].rsplit(".", 1)[-1])
def test_every_sample_type_ends_in_its_status_with_one_notification(stack, webhook, context, sample):
    status, answer = post(webhook, context, [sample])
    assert status == 200
    assert answer == {"applied": 1, "stale": 0, "duplicate": 0, "dead_lettered": 0, "failed": 0}
    expected = expected_per_event(sample)
    assert_contract_state(stack.states()[f"{expected['entity']}#{expected['id']}"], sample, expected)
    notes = stack.notifications()
    assert [(n["entity"], n["id"], n["status"], n["event_id"]) for n in notes] == [
        (expected["entity"], expected["id"], expected["status"], sample["id"])]


def test_one_body_with_every_sample_gives_the_expected_final_states(stack, webhook, context, monkeypatch):
    without_deadline(monkeypatch)  # 53 events: on a loaded machine moto alone may pass the 3 s deadline
    status, answer = post(webhook, context, SAMPLES)
    assert status == 200 and answer["applied"] == len(SAMPLES)
    states = stack.states()
    assert {pk: s["status"] for pk, s in states.items()} == {
        f"{e['entity']}#{e['id']}": e["status"] for e in expected_final()}
    assert len(stack.notifications()) == len(SAMPLES)


def test_a_single_object_body_is_accepted(stack, webhook, context):
    status, _ = post(webhook, context, f.message("queued"))
    assert status == 200 and stack.states()["message#MM1"]["status"] == "queued"


def test_history_written_by_the_webhook_expires_after_the_retention(stack, webhook, context):
    assert post(webhook, context, [f.message("queued")])[0] == 200
    [item] = stack.history("message#MM1")
    assert_expires_after_retention(item, stack)
    assert "expires_at" not in stack.states()["message#MM1"]


def test_a_redelivered_body_changes_nothing_and_publishes_nothing(stack, webhook, context):
    body = [f.message("queued"), f.message("sent", seconds=1)]
    post(webhook, context, body)
    stack.notifications()
    status, answer = post(webhook, context, body)
    # `sent` is the current winner again (duplicate); `queued` is now older than it (stale)
    assert status == 200 and answer["duplicate"] == 1 and answer["stale"] == 1 and answer["applied"] == 0
    assert stack.notifications() == []


def test_base64_encoded_body_is_verified_on_its_decoded_bytes(stack, webhook, context):
    text = json.dumps([f.message("queued")])
    event = webhook_event(text)
    event["body"] = base64.b64encode(text.encode()).decode()
    event["isBase64Encoded"] = True
    assert webhook.lambda_handler(event, context)["statusCode"] == 200


def rejected(webhook, context, event, capsys) -> dict:
    response = webhook.lambda_handler(event, context)
    assert response["statusCode"] == 403
    assert json.loads(response["body"]) == {"error": "invalid signature"}
    out = capsys.readouterr().out
    assert '"SignatureRejected"' in out  # the metric, in EMF
    return response


def test_missing_signature_is_rejected_and_nothing_is_processed(stack, webhook, context, capsys):
    event = webhook_event(json.dumps([f.message("queued")]))
    del event["headers"]["x-twilio-signature"]
    rejected(webhook, context, event, capsys)
    assert stack.states() == {} and stack.notifications() == [] and stack.dead_letters() == []


def test_an_unsigned_request_to_a_cold_container_builds_no_pipeline(stack, webhook, context, capsys):
    # Given a container that has answered nothing yet (the pipeline holds three AWS clients)
    from twilio_sink.pipeline import default_pipeline

    default_pipeline.cache_clear()
    event = webhook_event(json.dumps([f.message("queued")]))
    del event["headers"]["x-twilio-signature"]
    # When internet noise reaches it, Then it is refused before any of the pipeline is built
    rejected(webhook, context, event, capsys)
    assert default_pipeline.cache_info().currsize == 0
    # and the first signed delivery builds it
    assert post(webhook, context, [f.message("queued")])[0] == 200
    assert default_pipeline.cache_info().currsize == 1


def test_wrong_token_is_rejected(stack, webhook, context, capsys):
    rejected(webhook, context, webhook_event(json.dumps([f.message("queued")]), token="not-the-token"), capsys)
    assert stack.states() == {}


def test_tampered_body_is_rejected(stack, webhook, context, capsys):
    event = webhook_event(json.dumps([f.message("queued")]))
    event["body"] = json.dumps([f.message("read")])
    rejected(webhook, context, event, capsys)
    assert stack.states() == {}


def test_signature_without_body_hash_is_rejected(stack, webhook, context, capsys):
    event = webhook_event(json.dumps([f.message("queued")]))
    event["rawQueryString"] = ""
    event.pop("queryStringParameters", None)
    rejected(webhook, context, event, capsys)


def test_previous_token_is_accepted_during_a_rotation(stack, webhook, context):
    boto3.client("secretsmanager").put_secret_value(
        SecretId=stack.secret_arn,
        SecretString=json.dumps({"auth_token": "the-new-token", "previous_auth_token": "twilio-sink-local-test-token"}),
    )
    assert post(webhook, context, [f.message("queued")])[0] == 200
    assert post(webhook, context, [f.message("sent", seconds=1)], token="the-new-token")[0] == 200
    assert post(webhook, context, [f.message("read", seconds=2)], token="an-old-token")[0] == 403


def test_signed_but_unusable_body_is_a_dead_letter_and_400(stack, webhook, context):
    status, answer = post(webhook, context, "this is not json")
    assert status == 400 and answer["problems"][0]["reason"] == "not_json"
    [letter] = stack.dead_letters()
    assert letter["source"] == "webhook" and letter["raw"] == "this is not json"


def test_poison_events_in_a_batch_are_dead_letters_and_the_rest_is_processed(stack, webhook, context):
    body = [f.message("queued"), {"not": "a cloudevent"}, f.message("sent", message_id="")]
    status, answer = post(webhook, context, body)
    assert status == 400
    assert answer["applied"] == 1 and answer["dead_lettered"] == 2
    assert sorted(p["reason"] for p in answer["problems"]) == ["invalid_payload", "not_cloudevent"]
    assert stack.states()["message#MM1"]["status"] == "queued"
    assert sorted(letter["origin"]["index"] for letter in stack.dead_letters()) == [1, 2]


def test_transient_failure_answers_503_and_twilios_retry_doubles_nothing(stack, webhook, context, fail):
    body = [f.message("queued", message_id="MM-A"), f.message("queued", message_id="MM-B")]
    fail("sns", "publish_batch", times=1)
    status, answer = post(webhook, context, body)
    assert status == 503 and answer["failed"] >= 1
    status, _ = post(webhook, context, body)  # Twilio retries the whole batch
    assert status == 200
    assert sorted(n["id"] for n in stack.notifications()) == ["MM-A", "MM-B"]


def test_unreadable_auth_token_answers_503_so_twilio_retries(stack, webhook, context, fail):
    fail("secretsmanager", "get_secret_value", times=1)
    assert post(webhook, context, [f.message("queued")])[0] == 503
    assert stack.states() == {}


@pytest.mark.parametrize("secret", ['{"placeholder": "put the Twilio auth token here"}', '{"auth_token": ""}', "{not json"])
def test_a_secret_without_a_usable_token_answers_503_not_403(stack, webhook, context, capsys, secret):
    # 403 would make Twilio drop the events for good; 503 keeps them coming while the operator fixes it.
    boto3.client("secretsmanager").put_secret_value(SecretId=stack.secret_arn, SecretString=secret)
    assert post(webhook, context, [f.message("queued")])[0] == 503
    assert '"AuthTokenUnavailable"' in capsys.readouterr().out
    assert stack.states() == {}


def test_the_templates_own_placeholder_secret_answers_503_even_to_a_delivery_signed_with_it(stack, webhook, context,
                                                                                           capsys):
    # Given the secret exactly as a fresh deploy leaves it: built from template.yaml's own
    # GenerateSecretString (its JSON template plus the generated string under its key)
    from sink_dev.template import load_template

    generate = load_template()["Resources"]["AuthTokenSecret"]["Properties"]["GenerateSecretString"]
    secrets = boto3.client("secretsmanager")
    generated = secrets.get_random_password(PasswordLength=generate["PasswordLength"],
                                            ExcludePunctuation=generate["ExcludePunctuation"])["RandomPassword"]
    placeholder = json.loads(generate["SecretStringTemplate"]) | {generate["GenerateStringKey"]: generated}
    secrets.put_secret_value(SecretId=stack.secret_arn, SecretString=json.dumps(placeholder))
    # When Twilio delivers, signed with the real token, or (a forger who read the secret) with its values
    body = json.dumps([f.message("queued")])
    answers = [webhook.lambda_handler(webhook_event(body), context)["statusCode"]]
    answers += [webhook.lambda_handler(shapes.event_for(shapes.DEFAULT, body, token=str(value)), context)["statusCode"]
                for value in placeholder.values()]
    # Then every delivery is answered 503 (Twilio retries; a 403 would drop it for good), counted, and none processed
    assert answers == [503] * (1 + len(placeholder))
    assert capsys.readouterr().out.count('"AuthTokenUnavailable":[1.0]') == len(answers)
    assert stack.states() == {}


# ---------------------------------------------------------------- every deployment shape, end to end

@pytest.fixture
def deployed(stack, monkeypatch):
    """The webhook as deployed behind `deployment` (its PUBLIC_BASE_URL read at cold start)."""
    from sink_local.stack import load_function
    from twilio_sink import config

    def load(deployment):
        monkeypatch.setenv("PUBLIC_BASE_URL", deployment.public_base_url)
        config.settings.cache_clear()
        return load_function("webhook")

    return load


@pytest.mark.parametrize("deployment", shapes.DEPLOYMENTS, ids=lambda d: d.name)
def test_a_delivery_signed_by_twilio_is_accepted_behind_every_deployment_shape(stack, deployed, context, deployment):
    handler = deployed(deployment)
    body = json.dumps([f.message("queued")])
    response = handler.lambda_handler(shapes.event_for(deployment, body), context)
    assert response["statusCode"] == 200, response["body"]
    assert stack.states()["message#MM1"]["status"] == "queued"
    # The same delivery tampered with is still refused there: the check is not merely lenient.
    tampered = shapes.event_for(deployment, body)
    tampered["body"] = json.dumps([f.message("read")])
    assert handler.lambda_handler(tampered, context)["statusCode"] == 403


def test_a_custom_domain_without_public_base_url_is_rejected_loudly(stack, deployed, context):
    deployment = shapes.BY_NAME["http-custom-domain-base-path-dropped"]
    handler = deployed(shapes.with_public_base_url(deployment, ""))
    with json_logs() as logs:
        response = handler.lambda_handler(shapes.event_for(deployment, json.dumps([f.message("queued")])), context)
    assert response["statusCode"] == 403
    [line] = lines(logs, "signature rejected")
    assert line["reason"] == "invalid_signature"
    assert line["source_ip"] == "35.90.102.130"
    assert line["checked_url"] == f"https://{shapes.CUSTOM_DOMAIN}/prod/events"
    assert stack.states() == {}


def test_a_rejection_log_names_reason_and_caller_never_the_body_or_a_key(stack, webhook, context):
    secret = json.dumps({"auth_token": "current-token-value", "previous_auth_token": "previous-token-value"})
    boto3.client("secretsmanager").put_secret_value(SecretId=stack.secret_arn, SecretString=secret)
    body = json.dumps([f.message("queued", to={"address": "+15555550199"})])
    event = shapes.event_for(shapes.DEFAULT, body, token="current-token-value")
    event["body"] = body.replace("queued", "read")
    with json_logs("DEBUG") as logs:
        assert webhook.lambda_handler(event, context)["statusCode"] == 403
    out = logs.getvalue()
    [line] = lines(logs, "signature rejected")
    assert line["reason"] == "body_hash_mismatch" and line["source_ip"] == "35.90.102.130"
    assert line["level"] == "WARNING" and line["correlation_id"] == "req-http"
    for never in ("+15555550199", "current-token-value", "previous-token-value", event["headers"]["x-twilio-signature"]):
        assert never not in out


def test_a_signed_body_that_is_not_utf8_is_one_dead_letter_and_400(stack, webhook, context):
    raw = b'[{"id":"\xff"}]'
    response = webhook.lambda_handler(shapes.event_for(shapes.DEFAULT, raw), context)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["problems"][0]["reason"] == "undecodable"
    [letter] = stack.dead_letters()
    assert base64.b64decode(letter["raw"]) == raw and letter["source"] == "webhook"


def test_a_rest_api_delivery_is_processed_like_an_http_api_one(stack, deployed, context):
    deployment = shapes.BY_NAME["rest-query-rfc3986"]
    handler = deployed(deployment)
    response = handler.lambda_handler(shapes.event_for(deployment, json.dumps([f.message("queued")])), context)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["applied"] == 1


def test_sharedkey_deliveries_verify_with_the_key_held_in_the_secret(stack, webhook, context):
    boto3.client("secretsmanager").put_secret_value(SecretId=stack.secret_arn, SecretString=json.dumps(
        {"auth_token": "the-auth-token", "shared_keys": {"webhooks_sharedkey_1": "the-shared-secret"}}))
    settings_header = "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"
    body = json.dumps([f.message("queued")])
    good = shapes.event_for(shapes.DEFAULT, body, token="the-shared-secret", algorithm="HMAC_SHA256",
                            settings_header=settings_header)
    assert webhook.lambda_handler(good, context)["statusCode"] == 200
    forged = shapes.event_for(shapes.DEFAULT, body, token="the-auth-token", algorithm="HMAC_SHA256",
                              settings_header=settings_header)
    assert webhook.lambda_handler(forged, context)["statusCode"] == 403


# ---------------------------------------------------------------- the deadline

@pytest.fixture
def late(stack):
    """Make the wall clock of the pipeline jump ahead during the next call of an AWS operation (a slow AWS).

    The deadline and the claims' leases are kept on that clock: the jump is what a slow call takes,
    without a test waiting for it.
    """
    from twilio_sink import aws, pipeline

    core = pipeline.default_pipeline()
    ahead = [0.0]
    core.clock = lambda: time.time() + ahead[0]
    jumps: list[str] = []

    def inject(service: str, operation: str, seconds: float, call: int = 1):
        client = aws.client(service)
        real = getattr(client, operation)
        calls = [0]
        counting = threading.Lock()  # the pipeline makes an operation's calls from several threads

        def slow(*args, **kwargs):
            with counting:
                calls[0] += 1
                number = calls[0]
            result = real(*args, **kwargs)
            if number == call:
                ahead[0] += seconds
                jumps.append(operation)
            return result

        setattr(client, operation, slow)

    yield inject
    assert jumps, "the slow call was never made"


# Past the tests' deadline (conftest: 4.5 s, the longest the webhook allows), inside a claim's lease.
SLOW_CALL_SECONDS = 5


TWO_MESSAGES = [f.message("queued", message_id="MM-A"), f.message("queued", message_id="MM-B")]


def test_a_deadline_passed_before_the_state_writes_answers_503_having_written_nothing(
        stack, webhook, context, late, capsys):
    late("dynamodb", "batch_get_item", seconds=SLOW_CALL_SECONDS)
    status, answer = post(webhook, context, TWO_MESSAGES)
    assert (status, answer) == (503, {"error": "timed out, retry"})
    assert '"DeadlineExceeded"' in capsys.readouterr().out
    # Nothing of it runs on after the answer, and nothing was written: the retry has nothing to wait for
    assert stack.items() == [] and stack.notifications() == []
    status, answer = post(webhook, context, TWO_MESSAGES)  # Twilio's retry
    assert status == 200 and answer["applied"] == 2
    assert sorted(n["id"] for n in stack.notifications()) == ["MM-A", "MM-B"]
    assert unpublished(stack) == set()


def test_a_deadline_passed_before_the_publish_answers_503_and_releases_the_claims_for_the_retry(
        stack, webhook, context, late, capsys):
    late("dynamodb", "put_item", seconds=SLOW_CALL_SECONDS)
    status, answer = post(webhook, context, TWO_MESSAGES)
    assert (status, answer) == (503, {"error": "timed out, retry"})
    assert '"DeadlineExceeded"' in capsys.readouterr().out
    # The statuses are written, nothing is published, and the claims are released (their lease is over)
    states = stack.states()
    assert {pk: s["status"] for pk, s in states.items()} == {"message#MM-A": "queued", "message#MM-B": "queued"}
    assert stack.notifications() == []
    assert all(claim.endswith("|0") for s in states.values() for claim in s["claims"].values())
    # so Twilio's retry, at once, publishes each change once
    status, answer = post(webhook, context, TWO_MESSAGES)
    assert status == 200 and answer["duplicate"] == 2
    assert sorted(n["id"] for n in stack.notifications()) == ["MM-A", "MM-B"]
    assert unpublished(stack) == set()


def test_a_publish_that_started_is_finished_and_recorded_before_the_answer(stack, webhook, context, late):
    late("sns", "publish_batch", seconds=SLOW_CALL_SECONDS)
    status, answer = post(webhook, context, TWO_MESSAGES)
    # Past the deadline, but the publish had started: it is recorded, and the answer says it is done
    assert status == 200 and answer["applied"] == 2
    assert sorted(n["id"] for n in stack.notifications()) == ["MM-A", "MM-B"]
    assert len(stack.history("message#MM-A")) == 1 and unpublished(stack) == set()


# One message through four attempts, three statuses each: twelve applied changes, two PublishBatch requests.
TWELVE_CHANGES = [f.message(status, message_id="MM-L", attempt=str(attempt), seconds=attempt)
                  for attempt in range(1, 5) for status in ("queued", "sent", "delivered")]
# Past any claim's lease (the tests' Lambda context leaves 60 s, plus 2 s for the clocks).
PAST_THE_LEASE_SECONDS = 100


def test_no_publish_request_starts_after_the_lease_and_the_rest_is_published_once_by_the_retry(
        stack, webhook, context, late):
    late("sns", "publish_batch", seconds=PAST_THE_LEASE_SECONDS)
    with json_logs() as logs:
        status, _ = post(webhook, context, TWELVE_CHANGES)
    # The first request went out; the second would have started past the lease: it did not, and the
    # log says why (no AWS call failed)
    assert status == 503
    assert len(stack.notifications()) == 10
    assert [line["items"] for line in lines(logs, "lease over before publishing; left to be retried")] == [2]
    assert lines(logs, "AWS call failed; items will be retried") == []
    status, _ = post(webhook, context, TWELVE_CHANGES)  # Twilio's retry
    assert status == 200
    assert len(stack.notifications()) == 2 and unpublished(stack) == set()


def test_a_run_past_its_lease_leaves_the_claims_of_the_one_that_took_over_alone(stack, webhook, context, late):
    """A's state write is slow (past its deadline and its lease); meanwhile Twilio's retry B takes over."""
    from twilio_sink import aws

    late("dynamodb", "put_item", seconds=PAST_THE_LEASE_SECONDS)
    dynamodb = aws.client("dynamodb")
    slow_put = dynamodb.put_item
    taken: dict = {}

    def put_then_retry(**kwargs):
        result = slow_put(**kwargs)
        if not taken:
            taken["status"] = post(webhook, context, TWO_MESSAGES[:1])[0]  # B, in the same moment
            taken["claims"] = stack.states()["message#MM-A"]["claims"]
        return result

    dynamodb.put_item = put_then_retry
    assert post(webhook, context, TWO_MESSAGES[:1])[0] == 503  # A: past its deadline, it releases its claims
    assert taken["status"] == 200
    assert stack.states()["message#MM-A"]["claims"] == taken["claims"]
    assert [n["id"] for n in stack.notifications()] == ["MM-A"] and unpublished(stack) == set()


def test_an_unexpected_error_answers_503_without_a_traceback(stack, webhook, context, monkeypatch, capsys):
    from twilio_sink import webhook as core

    def broken(*args, **kwargs):
        raise RuntimeError("a bug quoting +15555550123")

    monkeypatch.setattr(core, "verify", broken)
    with json_logs() as logs:
        response = webhook.lambda_handler(webhook_event(json.dumps([f.message("queued")])), context)
    assert response["statusCode"] == 503
    assert json.loads(response["body"]) == {"error": "temporary failure, retry"}
    assert '"UnexpectedErrors"' in capsys.readouterr().out
    [line] = lines(logs, "unexpected error; answering 503 so that Twilio retries")
    assert line["error"] == "RuntimeError" and line["raised_at"].rsplit(":", 1)[0].endswith("test_webhook.py")
    out = logs.getvalue()
    assert "+15555550123" not in out and "Traceback" not in out
