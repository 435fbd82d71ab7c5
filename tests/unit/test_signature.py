"""The signature check on its own: what proves a request came from Twilio, and what does not."""

import hashlib

import pytest
from twilio.request_validator import RequestValidator

from twilio_sink.signature import Delivery, Rejected, verify

TOKEN = "token-1"
BASE = "https://abc.execute-api.us-east-1.amazonaws.com/events"


def signed(body: str, token: str = TOKEN, url: str = BASE, settings: str | None = None) -> Delivery:
    full = f"{url}?bodySHA256={hashlib.sha256(body.encode()).hexdigest()}"
    algorithm = "HMAC_SHA256" if settings else None
    signature = RequestValidator(token).compute_signature(full, {}, algorithm)
    return Delivery(url=full, body=body.encode(), signature=signature, settings_header=settings)


def reason(request: Delivery, tokens=(TOKEN,)) -> str:
    with pytest.raises(Rejected) as caught:
        verify(request, list(tokens))
    return caught.value.reason


def test_a_signed_request_verifies_and_returns_the_body():
    assert verify(signed('[{"a":1}]'), [TOKEN]) == '[{"a":1}]'


def test_any_of_the_tokens_may_have_signed_it():
    assert verify(signed("[]", token="previous"), ["current", "previous"]) == "[]"


def test_sharedkey_hmac_sha256_signatures_verify():
    request = signed("[]", settings="key=webhooks_sharedkey_1,algorithm=HMAC_SHA256")
    assert verify(request, [TOKEN]) == "[]"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"signature": None}, "missing_signature"),
        ({"signature": ""}, "missing_signature"),
        ({"signature": "bm90IGl0"}, "invalid_signature"),
        ({"body": b'[{"a":2}]'}, "invalid_signature"),  # body swapped under a valid URL signature
        ({"body": b"\xff\xfe"}, "body_not_utf8"),
        ({"url": BASE}, "missing_body_hash"),
        ({"url": BASE.replace("/events", "/other") + "?bodySHA256=x"}, "invalid_signature"),
    ],
)
def test_everything_else_is_rejected(change, expected):
    request = signed('[{"a":1}]')
    request = Delivery(**({"url": request.url, "body": request.body, "signature": request.signature,
                           "settings_header": None} | change))
    assert reason(request) == expected


def test_wrong_token_is_rejected():
    assert reason(signed("[]", token="other")) == "invalid_signature"


def test_no_token_configured_rejects_everything():
    assert reason(signed("[]"), tokens=()) == "invalid_signature"


def test_url_with_default_port_verifies_either_way():
    # Twilio may sign with or without :443; the validator tries both.
    request = signed("[]", url="https://abc.execute-api.us-east-1.amazonaws.com:443/events")
    assert verify(Delivery(request.url.replace(":443", ""), request.body, request.signature, None), [TOKEN]) == "[]"
