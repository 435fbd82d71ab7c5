"""The webhook tried as an attacker would, in-process against moto: unroutable requests, replays, URL and
header confusion, unsigned noise while the secret is unusable. No attack changes the table or publishes
anything, and none gets a 5xx (which would also make Twilio retry a mistake for four hours)."""

import json

import boto3
import pytest

from sink_dev.samples import webhook_event
from tests.support import factories as f
from tests.webhook import deliveries as shapes

BODY = json.dumps([f.message("queued")])
REST = shapes.BY_NAME["rest-stage"]


def http_request(method: str, path: str) -> dict:
    event = webhook_event(BODY)
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["routeKey"] = event["requestContext"]["routeKey"] = "$default"
    return event


def rest_request(method: str, path: str) -> dict:
    event = shapes.event_for(REST, BODY)
    event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    event["path"], event["requestContext"]["path"] = path, "/prod" + path
    event["resource"] = "/{proxy+}"
    return event


UNKNOWN_PATHS = ["/events/", "/EVENTS", "/Events", "/", "/events/x", "/events.json", "/prod/events", "//events",
                 "/%65vents", "/events%2F"]
OTHER_METHODS = ["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"]


@pytest.mark.parametrize("build", [http_request, rest_request], ids=["http-api", "rest-api"])
@pytest.mark.parametrize("path", UNKNOWN_PATHS)
def test_an_unknown_path_is_404_final_for_twilio(stack, webhook, context, build, path):
    if build is rest_request and path == "/events/":
        pytest.skip("a REST API routes /events/ to /events (a request signed for it is checked, not 404)")
    response = webhook.lambda_handler(build("POST", path), context)
    assert response["statusCode"] == 404, response
    assert stack.states() == {} and stack.notifications() == []


@pytest.mark.parametrize("build", [http_request, rest_request], ids=["http-api", "rest-api"])
@pytest.mark.parametrize("method", OTHER_METHODS)
def test_another_method_on_the_route_is_405_with_allow_post(stack, webhook, context, build, method):
    response = webhook.lambda_handler(build(method, "/events"), context)
    assert response["statusCode"] == 405
    headers = response.get("headers") or {k: v[0] for k, v in response.get("multiValueHeaders", {}).items()}
    assert headers["Allow"] == "POST"
    assert stack.states() == {}


def test_routes_answer_4xx_even_while_the_secret_is_unusable(stack, webhook, context):
    from twilio_sink import aws

    boto3.client("secretsmanager").put_secret_value(SecretId=stack.secret_arn, SecretString="null")
    aws.reset_clients()
    assert webhook.lambda_handler(http_request("POST", "/EVENTS"), context)["statusCode"] == 404
    assert webhook.lambda_handler(http_request("GET", "/events"), context)["statusCode"] == 405
    # Unsigned noise is refused without reading the secret: 403, not 503.
    unsigned = webhook_event(BODY)
    del unsigned["headers"]["x-twilio-signature"]
    assert webhook.lambda_handler(unsigned, context)["statusCode"] == 403
    # A signed delivery still gets 503, so that Twilio retries it once the secret is fixed.
    assert webhook.lambda_handler(webhook_event(BODY), context)["statusCode"] == 503


def test_a_replayed_delivery_is_200_and_changes_nothing(stack, webhook, context):
    delivery = webhook_event(json.dumps([f.message("queued"), f.message("sent", seconds=1)]))
    assert webhook.lambda_handler(delivery, context)["statusCode"] == 200
    states, published = stack.states(), stack.notifications()
    for _ in range(3):
        response = webhook.lambda_handler(json.loads(json.dumps(delivery)), context)
        assert response["statusCode"] == 200
        assert json.loads(response["body"])["applied"] == 0
    assert stack.states() == states and stack.notifications() == [] and len(published) == 2


def test_an_old_delivery_replayed_after_newer_ones_changes_nothing(stack, webhook, context):
    old = webhook_event(json.dumps([f.message("queued")]))
    webhook.lambda_handler(old, context)
    webhook.lambda_handler(webhook_event(json.dumps([f.message("delivered", seconds=5)])), context)
    stack.notifications()
    assert webhook.lambda_handler(old, context)["statusCode"] == 200
    assert stack.states()["message#MM1"]["status"] == "delivered" and stack.notifications() == []


def confused(change) -> dict:
    event = webhook_event(BODY)
    change(event)
    return event


def swap_body(event):
    event["body"] = BODY.replace("queued", "read")


def other_host(event):
    event["requestContext"]["domainName"] = "evil.example.com"


def extra_query(event):
    event["rawQueryString"] = "admin=1&" + event["rawQueryString"]


def second_body_hash(event):
    forged = BODY.replace("queued", "read")
    import hashlib
    event["rawQueryString"] += "&bodySHA256=" + hashlib.sha256(forged.encode()).hexdigest()
    event["body"] = forged


def hash_first_then_forged(event):
    import hashlib
    forged = BODY.replace("queued", "read")
    event["rawQueryString"] = "bodySHA256=" + hashlib.sha256(forged.encode()).hexdigest() + "&" + event["rawQueryString"]
    event["body"] = forged


def two_signatures(event):
    event["headers"]["x-twilio-signature"] = "AAAA," + event["headers"]["x-twilio-signature"]


def sha256_claimed(event):
    event["headers"]["x-twilio-webhooks-signature-settings"] = "key=unknown,algorithm=HMAC_SHA256"


def unknown_algorithm(event):
    event["headers"]["x-twilio-webhooks-signature-settings"] = "algorithm=NONE"


def signature_not_text(event):
    event["headers"]["x-twilio-signature"] = ["sig"]


def base64_flag_lies(event):
    event["isBase64Encoded"] = True


def empty_signature(event):
    event["headers"]["x-twilio-signature"] = ""


CONFUSIONS = [swap_body, other_host, extra_query, second_body_hash, hash_first_then_forged, two_signatures,
              sha256_claimed, unknown_algorithm, signature_not_text, base64_flag_lies, empty_signature]


@pytest.mark.parametrize("change", CONFUSIONS, ids=lambda c: c.__name__)
def test_url_and_header_confusion_is_refused(stack, webhook, context, change):
    response = webhook.lambda_handler(confused(change), context)
    assert response["statusCode"] == 403, response["body"]
    assert stack.states() == {} and stack.notifications() == []


def test_the_signature_header_is_read_whatever_its_case(stack, webhook, context):
    event = webhook_event(BODY)
    event["headers"]["X-TWILIO-SIGNATURE"] = event["headers"].pop("x-twilio-signature")
    assert webhook.lambda_handler(event, context)["statusCode"] == 200


def test_a_delivery_through_the_flood_options_rest_api_verifies(stack, webhook, context):
    # WebhookTwilioSourceOnly serves the function through a REST API stage named "sink": the URL Twilio
    # signs is the WebhookUrl output then, https://<api>.execute-api.<region>.amazonaws.com/sink/events.
    deployment = shapes.Deployment("rest-flood-option", "rest", f"https://{shapes.EXECUTE_API}/sink/events", "sink",
                                   "/sink/events")
    response = webhook.lambda_handler(shapes.event_for(deployment, BODY), context)
    assert response["statusCode"] == 200
    assert stack.states()["message#MM1"]["status"] == "queued"
