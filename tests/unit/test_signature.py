"""The signature check on its own: the URL Twilio signed, for every deployment shape, and what is rejected.

Requests are signed with the `twilio` package's own code (tests/webhook/deliveries.py).
"""

import hashlib

import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent, APIGatewayProxyEventV2
from twilio.request_validator import RequestValidator

from tests.webhook.deliveries import BY_NAME, CUSTOM_DOMAIN, DEFAULT, DEPLOYMENTS, called_url, event_for
from twilio_sink.signature import Delivery, Rejected, SigningKeys, delivery, verify

TOKEN = "token-1"
KEYS = SigningKeys(auth_tokens=(TOKEN,))
BODY = b'[{"a":1}]'


def wrap(event: dict):
    return APIGatewayProxyEventV2(event) if event.get("version") == "2.0" else APIGatewayProxyEvent(event)


def request_for(deployment, body: bytes = BODY, public_base_url: str | None = None, **signing) -> Delivery:
    event = event_for(deployment, body, token=signing.pop("token", TOKEN), **signing)
    base = deployment.public_base_url if public_base_url is None else public_base_url
    return delivery(wrap(event), base)


def reason(request: Delivery, keys: SigningKeys = KEYS) -> str:
    with pytest.raises(Rejected) as caught:
        verify(request, lambda: keys)
    return caught.value.reason


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d.name)
def test_every_deployment_shape_rebuilds_the_url_twilio_signed(deployment):
    request = request_for(deployment)
    signed = called_url(deployment, BODY).replace(":443/", "/")
    assert signed in request.urls
    assert verify(request, lambda: KEYS).body == BODY


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d.name)
def test_every_deployment_shape_rejects_a_body_swapped_under_a_valid_signature(deployment):
    event = event_for(deployment, BODY, token=TOKEN)
    event["body"] = '[{"a":2}]'
    assert reason(delivery(wrap(event), deployment.public_base_url)) == "body_hash_mismatch"


def test_a_custom_domain_without_the_public_base_url_is_rejected_and_names_the_url_it_checked():
    deployment = BY_NAME["http-custom-domain-base-path-dropped"]
    request = request_for(deployment, public_base_url="")
    # API Gateway's event does not say which base path Twilio called: only PUBLIC_BASE_URL can.
    assert reason(request) == "invalid_signature"
    assert request.checked_url == f"https://{CUSTOM_DOMAIN}/prod/events"


def test_a_wrong_public_base_url_is_rejected():
    request = request_for(BY_NAME["http-custom-domain"], public_base_url="https://other.example.com")
    assert reason(request) == "invalid_signature"


def test_the_http_api_query_is_used_exactly_as_sent_not_reencoded():
    deployment = BY_NAME["http-query-as-sent"]
    event = event_for(deployment, BODY, token=TOKEN)
    # The same parameters in another order or encoding are another URL: not what Twilio signed.
    event["rawQueryString"] = event["rawQueryString"].replace("tag=b&tag=a", "tag=a&tag=b")
    assert reason(delivery(wrap(event))) == "invalid_signature"


def test_a_rest_api_query_with_interleaved_repeated_names_cannot_be_rebuilt():
    # API Gateway groups repeated names, losing their interleaving: a documented limit of payload 1.0.
    deployment = BY_NAME["rest-stage"]
    interleaved = deployment.__class__(**{**deployment.__dict__, "sink_url": deployment.sink_url + "?a=1&b=2&a=3"})
    assert reason(request_for(interleaved)) == "invalid_signature"


def test_base64_encoded_bodies_are_checked_on_their_decoded_bytes():
    request = request_for(DEFAULT, base64_body=True)
    assert request.body == BODY and verify(request, lambda: KEYS).body == BODY


def test_a_body_flagged_base64_that_is_not_is_rejected():
    event = event_for(DEFAULT, BODY, token=TOKEN)
    event["isBase64Encoded"] = True
    event["body"] = "not base64 at all!"
    with pytest.raises(Rejected) as caught:
        delivery(wrap(event))
    assert caught.value.reason == "body_not_base64"


def test_a_signed_body_that_is_not_utf8_still_verifies_on_its_bytes():
    body = b'[{"a":"\xff\xfe"}]'
    assert verify(request_for(DEFAULT, body), lambda: KEYS).body == body


def test_a_tampered_body_that_is_not_utf8_is_rejected():
    event = event_for(DEFAULT, b"\xff\xfe", token=TOKEN)
    event["body"] = "//79"  # other bytes, still base64
    assert reason(delivery(wrap(event))) == "body_hash_mismatch"


def test_the_previous_token_verifies_during_a_rotation_and_an_old_one_does_not():
    keys = SigningKeys(auth_tokens=("current", "previous"))
    assert verify(request_for(DEFAULT, token="previous"), lambda: keys).body == BODY
    assert verify(request_for(DEFAULT, token="current"), lambda: keys).body == BODY
    assert reason(request_for(DEFAULT, token="older"), keys) == "invalid_signature"


SETTINGS = "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"


def test_a_sharedkey_hmac_sha256_signature_verifies_with_the_key_it_names():
    keys = SigningKeys(auth_tokens=(TOKEN,), shared_keys={"webhooks_sharedkey_1": "shared-secret"})
    request = request_for(DEFAULT, token="shared-secret", algorithm="HMAC_SHA256", settings_header=SETTINGS)
    assert verify(request, lambda: keys).body == BODY
    # Signed with the named key's secret but HMAC-SHA1: not what the header announced.
    sha1 = request_for(DEFAULT, token="shared-secret", settings_header=SETTINGS)
    assert reason(sha1, keys) == "invalid_signature"


def test_an_hmac_sha256_signature_with_an_unknown_key_falls_back_to_the_auth_tokens():
    request = request_for(DEFAULT, token=TOKEN, algorithm="HMAC_SHA256", settings_header=SETTINGS)
    assert verify(request, lambda: KEYS).body == BODY


def test_an_unsupported_algorithm_is_rejected():
    request = request_for(DEFAULT, settings_header="key=k,algorithm=HMAC_MD5")
    assert reason(request) == "unsupported_signature_algorithm"


def test_the_sha256_signature_is_not_accepted_as_sha1():
    request = request_for(DEFAULT, algorithm="HMAC_SHA256")  # no settings header: Twilio would sign SHA-1
    assert reason(request) == "invalid_signature"


def _with(request: Delivery, **change) -> Delivery:
    return Delivery(**({"urls": request.urls, "body": request.body, "signature": request.signature,
                        "settings_header": request.settings_header} | change))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"signature": None}, "missing_signature"),
        ({"signature": ""}, "missing_signature"),
        ({"signature": "bm90IGl0"}, "invalid_signature"),
        ({"urls": ()}, "malformed_request"),
        ({"urls": (f"https://{DEFAULT.sink_url[8:]}",)}, "missing_body_hash"),
        ({"urls": ("https://[::1/events?bodySHA256=x",)}, "malformed_signature_input"),
        ({"urls": ("https://host:port/events?bodySHA256=x",)}, "malformed_signature_input"),
        ({"urls": ("https://h/events?bodySHA256=\ud800",)}, "malformed_signature_input"),
    ],
)
def test_everything_else_is_rejected(change, expected):
    assert reason(_with(request_for(DEFAULT), **change)) == expected


def test_a_url_signature_without_the_body_hash_cannot_carry_a_body():
    url = DEFAULT.sink_url
    request = Delivery((url,), BODY, RequestValidator(TOKEN).compute_signature(url, {}), None)
    assert reason(request) == "missing_body_hash"


def test_no_key_configured_rejects_everything():
    assert reason(request_for(DEFAULT), SigningKeys(auth_tokens=())) == "invalid_signature"


@pytest.mark.parametrize(
    ("field", "value"),
    [("body", 42), ("body", {"a": 1}), ("rawPath", None), ("rawPath", "events"), ("requestContext", {}),
     ("headers", {"x-twilio-signature": 7})],
)
def test_malformed_events_are_rejected_not_raised(field, value):
    event = event_for(DEFAULT, BODY, token=TOKEN)
    event[field] = value
    with pytest.raises(Rejected) as caught:
        verify(delivery(wrap(event)), lambda: KEYS)
    assert caught.value.reason == "malformed_request"


def test_the_body_hash_twilio_appends_is_the_sha256_of_the_raw_bytes():
    request = request_for(DEFAULT)
    assert request.urls[0].endswith("bodySHA256=" + hashlib.sha256(BODY).hexdigest())
