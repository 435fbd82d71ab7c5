"""Reading the signing keys from the auth-token secret (contract 1), and the edges of the signature check
that the deployment-shape tests do not reach: each rejection's exact reason code (the docs' table of
reasons is what an operator reads), defaults, and the settings header.
"""

import base64
import json

import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent, APIGatewayProxyEventV2

from tests.webhook.deliveries import BY_NAME, DEFAULT, event_for
from twilio_sink import signature
from twilio_sink.signature import Rejected, SigningKeys, TokenNotConfigured, delivery, signed_urls, signing_keys, verify

SECRET_ID = "arn:aws:secretsmanager:us-east-1:123456789012:secret:token"
TOKEN = "token-1"


class Secrets:
    """Powertools' SecretsProvider as the function sees it: `get(name, max_age=…)`."""

    def __init__(self, value):
        self.value, self.calls = value, []

    def get(self, name, max_age):
        self.calls.append((name, max_age))
        return self.value


@pytest.fixture
def secret(monkeypatch):
    def put(value):
        provider = Secrets(value)
        monkeypatch.setattr(signature.aws, "secrets", lambda: provider)
        return provider

    return put


@pytest.mark.parametrize(("value", "tokens", "shared"), [
    ("the-token", ("the-token",), {}),
    ("  the-token\n", ("the-token",), {}),
    (b"the-token", ("the-token",), {}),
    ('{"auth_token": "new"}', ("new",), {}),
    ('  {"auth_token": " new ", "previous_auth_token": "old"}', ("new", "old"), {}),
    ('{"previous_auth_token": "old"}', ("old",), {}),
    ('{"auth_token": "new", "previous_auth_token": ""}', ("new",), {}),
    ('{"auth_token": "new", "shared_keys": {"k1": " s1 ", "k2": "", "k3": 7}}', ("new",), {"k1": "s1"}),
    ('{"shared_keys": {"k1": "s1"}}', (), {"k1": "s1"}),
    ('{"auth_token": "new", "shared_keys": ["k1"]}', ("new",), {}),
])
def test_the_secret_holds_the_token_or_json_with_tokens_and_shared_keys(secret, value, tokens, shared):
    provider = secret(value)
    assert signing_keys(SECRET_ID) == SigningKeys(auth_tokens=tokens, shared_keys=shared)
    # read through Powertools' cache, kept five minutes: a rotated token is picked up without a deploy
    assert provider.calls == [(SECRET_ID, 300)]


@pytest.mark.parametrize("value", [
    '{"note": "replace this value with the Twilio auth token", "placeholder": "x"}',  # the template's placeholder
    '{"auth_token": ""}', '{"auth_token": "  ", "previous_auth_token": 5}', "   ", "{}",
])
def test_a_secret_without_a_usable_key_is_not_configured_and_names_the_secret(secret, value):
    secret(value)
    with pytest.raises(TokenNotConfigured) as caught:
        signing_keys(SECRET_ID)
    assert SECRET_ID in str(caught.value)


def test_a_settings_header_names_the_shared_key_only_when_the_secret_holds_it():
    keys = SigningKeys(auth_tokens=("token",), shared_keys={"k1": "shared"})
    assert keys.for_request("key=k1,algorithm=HMAC_SHA256") == (("shared", None),)
    assert keys.for_request(" algorithm = HMAC_SHA256 , key = k1 ") == (("shared", None),)
    assert keys.for_request("key=k2,algorithm=HMAC_SHA256") == (("token", None),)
    assert keys.for_request("key=,k1") == (("token", None),)
    assert keys.for_request("k1") == (("token", None),)
    assert keys.for_request("key=k1=x") == (("token", None),)  # the value is everything after the first "="
    assert keys.for_request(None) == (("token", None),)
    assert SigningKeys(auth_tokens=("token",), shared_keys={"": "shared"}).for_request(None) == (("token", None),)
    assert SigningKeys(auth_tokens=("token",), shared_keys={"k=1": "shared"}).for_request("key=k=1") == (
        ("shared", None),)


def wrap(event: dict):
    return APIGatewayProxyEventV2(event) if event.get("version") == "2.0" else APIGatewayProxyEvent(event)


def rejection(function, *args) -> str:
    with pytest.raises(Rejected) as caught:
        function(*args)
    assert str(caught.value) == caught.value.reason  # the reason is also the exception's text
    return caught.value.reason


def test_the_default_is_the_apis_own_url():
    event = wrap(event_for(DEFAULT, b"[]", token=TOKEN))
    assert delivery(event).urls == signed_urls(event) == delivery(event, "").urls
    assert signed_urls(event)[0].startswith("https://abc123defg.execute-api.us-east-1.amazonaws.com/events?bodySHA256=")


def test_a_url_without_query_is_the_bare_url():
    event = event_for(DEFAULT, b"[]", token=TOKEN)
    event["rawQueryString"] = ""
    assert signed_urls(wrap(event)) == ("https://abc123defg.execute-api.us-east-1.amazonaws.com/events",)


def test_any_host_name_is_a_domain_name():
    event = event_for(DEFAULT, b"[]", token=TOKEN)
    event["requestContext"]["domainName"] = "XyZ-0.example.com"
    assert signed_urls(wrap(event))[0].startswith("https://XyZ-0.example.com/events?")


@pytest.mark.parametrize("domain", ["", "a/b", "a?b", "a#b", "user@a", "a b", None, 7])
def test_a_domain_name_that_is_not_a_host_is_a_malformed_request(domain):
    event = event_for(DEFAULT, b"[]", token=TOKEN)
    event["requestContext"]["domainName"] = domain
    assert rejection(signed_urls, wrap(event)) == "malformed_request"


@pytest.mark.parametrize(("base", "stage", "path", "expected"), [
    ("https://hooks.example.com/", "$default", "/events", "https://hooks.example.com/events"),
    ("https://hooks.example.com/X", "$default", "/events", "https://hooks.example.com/X/events"),
    ("https://hooks.example.com/twilio//", "$default", "/events", "https://hooks.example.com/twilio/events"),
    ("https://hooks.example.com", "prod", "/prod/events", "https://hooks.example.com/events"),
    ("https://hooks.example.com", "$default", "/$default/events", "https://hooks.example.com/$default/events"),
    ("https://hooks.example.com", "", "/prod/events", "https://hooks.example.com/prod/events"),
    ("https://hooks.example.com/prod", "prod", "/prodx/events", "https://hooks.example.com/prod/prodx/events"),
])
def test_the_public_base_url_replaces_host_base_path_and_stage(base, stage, path, expected):
    event = event_for(DEFAULT, b"[]", token=TOKEN)
    event["rawPath"], event["rawQueryString"] = path, ""
    event["requestContext"]["stage"] = stage
    assert signed_urls(wrap(event), base) == (expected,)


def test_a_rest_api_query_from_single_value_parameters_puts_the_body_hash_last():
    deployment = BY_NAME["rest-stage"]
    event = event_for(deployment, b"[]", token=TOKEN)
    digest = event["multiValueQueryStringParameters"]["bodySHA256"][0]
    event["multiValueQueryStringParameters"] = None
    event["queryStringParameters"] = {"bodySHA256": digest, "tenant": "a b"}
    urls = signed_urls(wrap(event))
    assert urls[0] == f"https://abc123defg.execute-api.us-east-1.amazonaws.com/prod/events?tenant=a%20b&bodySHA256={digest}"
    assert verify(delivery(wrap(event_for(deployment, b"[]", token=TOKEN))), lambda: SigningKeys((TOKEN,))).body == b"[]"
    event["queryStringParameters"] = {"tenant": "a"}  # no hash at all: nothing appended
    assert signed_urls(wrap(event))[0].endswith("/prod/events?tenant=a")


def test_a_missing_body_is_empty_and_a_lone_surrogate_body_is_malformed():
    event = event_for(DEFAULT, b"[]", token=TOKEN)
    del event["body"]
    assert delivery(wrap(event)).body == b""
    event["body"] = "[\ud800]"
    assert rejection(delivery, wrap(event)) == "malformed_request"


def test_a_base64_body_must_be_strict_base64():
    event = event_for(DEFAULT, b"[]", token=TOKEN)
    event["isBase64Encoded"] = True
    event["body"] = base64.b64encode(b"[]").decode() + "!"
    assert rejection(delivery, wrap(event)) == "body_not_base64"
    event["body"] = "W10"  # unpadded
    assert rejection(delivery, wrap(event)) == "body_not_base64"


def test_a_signed_body_that_is_not_text_still_needs_the_right_token_and_hash():
    body = b"\xff\xfe"
    event = wrap(event_for(DEFAULT, body, token=TOKEN))
    assert verify(delivery(event), lambda: SigningKeys((TOKEN,))).body == body
    assert rejection(verify, delivery(event), lambda: SigningKeys(("other",))) == "invalid_signature"
    sha256 = wrap(event_for(DEFAULT, body, token="shared", algorithm="HMAC_SHA256",
                            settings_header="key=k1,algorithm=HMAC_SHA256"))
    assert verify(delivery(sha256), lambda: SigningKeys(("token",), {"k1": "shared"})).body == body


def test_a_text_body_is_checked_as_text():
    body = json.dumps([{"text": "café"}], ensure_ascii=False).encode()
    event = wrap(event_for(DEFAULT, body, token=TOKEN))
    assert verify(delivery(event), lambda: SigningKeys((TOKEN,))).body == body
