"""The real webhook handler against moto: signatures, contract-5 answers, retries."""

import base64
import json

import boto3
import pytest

from scripts.generate_events import load_samples, webhook_event
from tests.support import factories as f
from tests.support.expectations import assert_contract_state, expected_final, expected_per_event
from tests.support.sinks import post

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


def test_one_body_with_every_sample_gives_the_expected_final_states(stack, webhook, context):
    status, answer = post(webhook, context, SAMPLES)
    assert status == 200 and answer["applied"] == len(SAMPLES)
    states = stack.states()
    assert {pk: s["status"] for pk, s in states.items()} == {
        f"{e['entity']}#{e['id']}": e["status"] for e in expected_final()}
    assert len(stack.notifications()) == len(SAMPLES)


def test_a_single_object_body_is_accepted(stack, webhook, context):
    status, _ = post(webhook, context, f.message("queued"))
    assert status == 200 and stack.states()["message#MM1"]["status"] == "queued"


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
    body = [f.message("queued"), {"not": "a cloudevent"}, f.cloudevent("com.twilio.nope", {})]
    status, answer = post(webhook, context, body)
    assert status == 400
    assert answer["applied"] == 1 and answer["dead_lettered"] == 2
    assert sorted(p["reason"] for p in answer["problems"]) == ["not_cloudevent", "unknown_type"]
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
