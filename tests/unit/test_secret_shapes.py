"""Every shape of the auth-token secret (contract 1) and the words an operator reads when it is not
usable (logged with `AuthTokenUnavailable`), the subaccounts' own tokens, and strict JSON numbers.
"""

import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from tests.support import factories as f
from tests.webhook.deliveries import DEFAULT, event_for
from twilio_sink.envelope import parse_json, to_cloudevent
from twilio_sink.poison import Poison
from twilio_sink.signature import SigningKeys, TokenNotConfigured, Verified, delivery, parse_signing_keys, verify

SID = "AC" + "0123456789abcdef" * 2
HEX_TOKEN = "0123456789" * 3 + "01"


@pytest.mark.parametrize(("value", "words"), [
    (b"\xff\xfe", "the secret is binary, not UTF-8 text"),
    (42, "the secret is not text"),
    ("", "the secret is empty or JSON other than an object"),
    ("null", "the secret is empty or JSON other than an object"),
    ('"token"', "the secret is empty or JSON other than an object"),
    ('["token"]', "the secret is empty or JSON other than an object"),
    ("two words", "the secret is not a single token (it holds spaces or control characters)"),
    ("{not json", "the secret starts like a JSON object but is not one"),
    ('{"note": "replace", "placeholder": "x"}', "the secret's JSON object holds no usable key"),
    ('{"auth_token": "a b", "accounts": {"ACnot-a-sid": "t", "' + SID + '": ""}}',
     "the secret's JSON object holds no usable key"),
])
def test_a_secret_that_is_not_usable_says_why_in_words(value, words):
    with pytest.raises(TokenNotConfigured) as caught:
        parse_signing_keys(value)
    assert str(caught.value) == words


@pytest.mark.parametrize(("value", "keys"), [
    (b"the-token", SigningKeys(auth_tokens=("the-token",))),
    (" the-token ", SigningKeys(auth_tokens=("the-token",))),
    (HEX_TOKEN, SigningKeys(auth_tokens=(HEX_TOKEN,))),  # all digits: still a token, not a JSON number
    ('{"accounts": {" ' + SID + ' ": " sub-token ", "ACshort": "x"}}', SigningKeys(accounts={SID: "sub-token"})),
])
def test_usable_secrets(value, keys):
    assert parse_signing_keys(value) == keys


def test_a_delivery_signed_with_a_subaccounts_own_token_is_verified_as_that_account():
    body = b'[{"a":1}]'
    request = delivery(APIGatewayProxyEventV2(event_for(DEFAULT, body, token="sub-token")))
    keys = SigningKeys(auth_tokens=("main-token",), accounts={SID: "sub-token"})
    assert verify(request, lambda: keys) == Verified(body, SID)
    main = delivery(APIGatewayProxyEventV2(event_for(DEFAULT, body, token="main-token")))
    assert verify(main, lambda: keys) == Verified(body, None)


@pytest.mark.parametrize(("text", "words"), [
    ("[NaN]", "not strict JSON: NaN is not a JSON number"),
    ("[-Infinity]", "not strict JSON: -Infinity is not a JSON number"),
    ("[1e999]", "not strict JSON: a number overflows a 64-bit float"),
])
def test_numbers_json_cannot_carry_are_invalid_payloads(text, words):
    with pytest.raises(Poison) as caught:
        parse_json(text)
    assert (caught.value.reason, caught.value.detail) == ("invalid_payload", words)


def test_finite_numbers_are_kept_and_data_as_text_is_held_to_the_same_rule():
    assert parse_json('[1.5, -2e3, 7]') == [1.5, -2000.0, 7]
    event = f.message("queued") | {"data": '{"message_id": "MM1", "price": NaN}'}
    with pytest.raises(Poison) as caught:
        to_cloudevent(event)
    assert (caught.value.reason, caught.value.detail) == ("invalid_payload", "data: not strict JSON: NaN is not a JSON number")
