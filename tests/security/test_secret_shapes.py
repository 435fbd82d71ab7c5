"""Every shape the auth-token secret can take: only a token, or a JSON object with usable keys, verifies
anything; every other shape is "not configured" (503, AuthTokenUnavailable), never a signing key.

For each unusable shape the request is signed with the key a naive reader would have taken from it
(the text itself, the JSON value, the placeholder...): it must not get through.
"""

import json

import boto3
import pytest

from sink_dev.samples import webhook_event
from tests.support import factories as f
from tests.webhook.logs import json_logs

MARKER = "S3CRETMARK"  # in every secret below: no log line may carry it, nor any other byte of the secret

# (secret value, keys an attacker might try because a naive parser would have used them)
UNUSABLE = {
    "json-null": ("null", ["null", "None", ""]),
    "json-empty-string": ('""', ['""', ""]),
    "json-string": (f'"{MARKER}"', [MARKER, f'"{MARKER}"']),
    "json-array": (f'["{MARKER}"]', [MARKER, f'["{MARKER}"]']),
    "json-number": ("12345", ["12345"]),
    "json-float": ("1.5e3", ["1.5e3", "1500.0"]),
    "json-true": ("true", ["true", "True"]),
    "json-false": ("false", ["false", "False"]),
    # (An empty SecretString is refused by Secrets Manager itself.)
    "whitespace": (" \n\t ", [" ", ""]),
    "two-words": (f"{MARKER} other", [f"{MARKER} other", MARKER]),
    "control-character": (f"{MARKER}\x00x", [f"{MARKER}\x00x", MARKER]),
    "placeholder": ('{"note": "replace this value", "placeholder": "' + MARKER + '"}', [MARKER]),
    "empty-object": ("{}", ["{}"]),
    "broken-object": ('{"auth_token": "' + MARKER, ['{"auth_token": "' + MARKER, MARKER]),
    "auth-token-null": ('{"auth_token": null}', ["null", "None"]),
    "auth-token-number": ('{"auth_token": 12345}', ["12345"]),
    "auth-token-array": ('{"auth_token": ["' + MARKER + '"]}', [MARKER]),
    "auth-token-object": ('{"auth_token": {"t": "' + MARKER + '"}}', [MARKER]),
    "auth-token-empty": ('{"auth_token": ""}', [""]),
    "auth-token-spaces": ('{"auth_token": "   "}', ["   ", ""]),
    "auth-token-two-words": ('{"auth_token": "' + MARKER + ' x"}', [MARKER + " x", MARKER]),
    "previous-only-null": ('{"previous_auth_token": null}', ["null"]),
    "accounts-not-an-object": ('{"accounts": ["' + MARKER + '"]}', [MARKER]),
    "accounts-bad-sid": ('{"accounts": {"ACnot-a-sid": "' + MARKER + '"}}', [MARKER]),
    "accounts-token-number": ('{"accounts": {"AC' + "0" * 32 + '": 5}}', ["5"]),
    "shared-keys-not-strings": ('{"shared_keys": {"k": 5, "j": null}}', ["5", "null"]),
}
USABLE = {
    "plain-token": (MARKER + "tok", MARKER + "tok"),
    "plain-token-with-newline": (MARKER + "tok\n", MARKER + "tok"),
    "hex-token-of-digits": ("1" * 32, "1" * 32),  # a real auth token that happens to read as a JSON number
    "auth-token": (json.dumps({"auth_token": MARKER + "a"}), MARKER + "a"),
    "previous-token": (json.dumps({"auth_token": MARKER + "a", "previous_auth_token": MARKER + "b"}), MARKER + "b"),
    "accounts": (json.dumps({"accounts": {"AC" + "7" * 32: MARKER + "sub"}}), MARKER + "sub"),
}


def set_secret(stack, value: str | bytes) -> None:
    from twilio_sink import aws

    kind = "SecretBinary" if isinstance(value, bytes) else "SecretString"
    boto3.client("secretsmanager").put_secret_value(SecretId=stack.secret_arn, **{kind: value})
    aws.reset_clients()  # forget the cached value, as a new container would


@pytest.mark.parametrize(("secret", "tried"), UNUSABLE.values(), ids=UNUSABLE)
def test_an_unusable_secret_answers_503_and_no_key_it_suggests_gets_through(stack, webhook, context, secret, tried):
    set_secret(stack, secret)
    body = json.dumps([f.message("queued")])
    with json_logs("DEBUG") as logs:
        for key in tried:
            response = webhook.lambda_handler(webhook_event(body, token=key), context)
            assert response["statusCode"] == 503, (key, response["body"])
    assert "auth token unavailable" in logs.getvalue()
    assert MARKER not in logs.getvalue()
    assert stack.states() == {} and stack.notifications() == []


@pytest.mark.parametrize("secret", [b"\xff\xfe" + MARKER.encode() + b"\x80", MARKER.encode() + b"\xc3\x28"],
                         ids=["binary-leading", "binary-trailing"])
def test_a_binary_secret_answers_503_and_no_byte_of_it_is_logged(stack, webhook, context, capsys, secret):
    set_secret(stack, secret)
    with json_logs("DEBUG") as logs:
        response = webhook.lambda_handler(webhook_event(json.dumps([f.message("queued")])), context)
    assert response["statusCode"] == 503
    out = logs.getvalue() + capsys.readouterr().out
    assert '"AuthTokenUnavailable"' in out
    # Python's decode error would say "can't decode byte 0xff in position 0": no byte, in any spelling.
    for leak in (MARKER, "0xff", "0xfe", "0x80", "0xc3", "\\xff", "\\xc3", "byte"):
        assert leak not in out, leak
    assert stack.states() == {}


@pytest.mark.parametrize(("secret", "key"), USABLE.values(), ids=USABLE)
def test_a_usable_secret_verifies_with_its_key_and_only_with_it(stack, webhook, context, monkeypatch, secret, key):
    from twilio_sink import config

    set_secret(stack, secret)
    event = f.message("queued")
    if "accounts" in secret:  # a subaccount's token signs that subaccount's events
        event["source"] = "/2010-04-01/Accounts/AC" + "7" * 32 + "/Messages/MM1"
        monkeypatch.setenv("TWILIO_ACCOUNT_SIDS", "AC" + "7" * 32)
        config.settings.cache_clear()
    body = json.dumps([event])
    with json_logs("DEBUG") as logs:
        assert webhook.lambda_handler(webhook_event(body, token=key + "x"), context)["statusCode"] == 403
        response = webhook.lambda_handler(webhook_event(body, token=key), context)
    assert response["statusCode"] == 200, response["body"]
    assert stack.states()["message#MM1"]["status"] == "queued"
    assert MARKER not in logs.getvalue()
