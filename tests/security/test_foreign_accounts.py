"""Only the accounts in TwilioAccountSids feed the stack, through either sink.

The role's external id and the webhook's signature prove only that Twilio sent an event; whoever has
a Twilio account can make Twilio send. An event naming another account, or two accounts, is a dead
letter `foreign_account` (counted, alarmed), and changes and publishes nothing. (An event naming none
is not foreign: tests/seeds/test_what_twilio_sends.py.)
"""

import json

import boto3
import pytest

from sink_dev.samples import SAMPLE_ACCOUNT_SID, SAMPLE_SUBACCOUNT_SID, load_samples, webhook_event
from tests.support import factories as f
from tests.support.sinks import consume, post
from twilio_sink.envelope import to_cloudevent
from twilio_sink.registry import accounts_named

OURS = SAMPLE_ACCOUNT_SID
THEIRS = "AC" + "e" * 32
SAMPLES = load_samples()


def from_account(event: dict, account: str) -> dict:
    """The event as the other account's Twilio would send it: its source and every account field."""
    event = json.loads(json.dumps(event).replace(OURS, account).replace(SAMPLE_SUBACCOUNT_SID, account))
    if event["type"] == "com.twilio.eventstreams.test-event":
        event["id"] = account
    return event


def call_event(parameters: dict, source: str) -> dict:
    return f.cloudevent("com.twilio.voice.status-callback.call.ringing",
                        {"sid": "CAforeign", "timestamp": f.at(0),
                         "request": {"method": "POST", "parameters": {"CallSid": "CAforeign", **parameters}}}) | {
        "source": source}


def foreign_variants() -> dict[str, dict]:
    base = f.message("queued", message_id="MMforeign")
    return {
        # A call names its account among the callback's parameters: the allow-list reads them too.
        "call-parameters-name-another-account": call_event({"AccountSid": THEIRS},
                                                            f"/2010-04-01/Accounts/{OURS}/Calls/CAforeign"),
        "other-account-in-source": base | {"source": f"/2010-04-01/Accounts/{THEIRS}/Messages/MMforeign"},
        "other-account-in-payload": base | {"data": base["data"] | {"account_sid": THEIRS}},
        "source-and-payload-disagree": base | {"data": base["data"] | {"accountSid": THEIRS}},
        "account-field-not-a-sid": base | {"data": base["data"] | {"accountsid": ["AC" + "0" * 32]}},
        "account-field-uppercase-sid": base | {"data": base["data"] | {"account_sid": OURS.upper()}},
        "account-not-a-path-segment": base | {"source": f"/2010-04-01/Accounts/{OURS}x/Messages/MMforeign"},
        "source-names-two-accounts": base | {"source": f"/2010-04-01/Accounts/{OURS}/Accounts/{THEIRS}/x"},
    }


FOREIGN = foreign_variants()


def assert_nothing_applied(stack, reasons: int) -> None:
    assert stack.states() == {}
    assert stack.notifications() == []
    letters = stack.dead_letters()
    assert [letter["reason"] for letter in letters] == ["foreign_account"] * reasons
    assert all(THEIRS not in letter["detail"] and OURS not in letter["detail"] for letter in letters)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s["type"].rsplit(".", 2)[-2] + "." + s["type"].rsplit(".", 1)[-1])
def test_every_sample_from_another_account_is_refused_through_the_stream(stack, consumer, context, capsys, sample):
    assert consume(consumer, context, [from_account(sample, THEIRS)]) == {"batchItemFailures": []}
    assert_nothing_applied(stack, 1)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s["type"].rsplit(".", 2)[-2] + "." + s["type"].rsplit(".", 1)[-1])
def test_every_sample_from_another_account_is_refused_through_the_webhook(stack, webhook, context, sample):
    status, answer = post(webhook, context, [from_account(sample, THEIRS)])
    assert status == 400 and answer["problems"][0]["reason"] == "foreign_account"
    assert_nothing_applied(stack, 1)


@pytest.mark.parametrize("event", FOREIGN.values(), ids=FOREIGN)
def test_foreign_shapes_are_refused_on_both_sinks_and_counted(stack, consumer, webhook, context, capsys, monkeypatch,
                                                              event):
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    assert consume(consumer, context, [event]) == {"batchItemFailures": []}
    status, _ = post(webhook, context, [event])
    assert status == 400
    assert_nothing_applied(stack, 2)
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [record.get("ForeignAccountEvents") for record in emf] == [[1.0], [1.0]]  # the consumer's, the webhook's


def test_a_foreign_event_does_not_stop_its_neighbours(stack, consumer, webhook, context):
    ours = [f.message("queued", message_id="MMours"), f.operation("scheduled")]
    assert consume(consumer, context, [ours[0], FOREIGN["other-account-in-source"], ours[1]]) == {"batchItemFailures": []}
    assert set(stack.states()) == {"message#MMours", "operation#OP1"}
    status, answer = post(webhook, context, [FOREIGN["other-account-in-payload"], f.message("sent", message_id="MMours", seconds=1)])
    assert status == 400 and answer["applied"] == 1
    assert stack.states()["message#MMours"]["status"] == "sent"
    assert [letter["reason"] for letter in stack.dead_letters()] == ["foreign_account"] * 2


def test_the_sink_test_event_of_another_account_does_not_validate_a_sink(stack, consumer, context):
    test_event = next(s for s in SAMPLES if s["type"] == "com.twilio.eventstreams.test-event")
    consume(consumer, context, [from_account(test_event, THEIRS)])
    assert stack.states() == {}
    consume(consumer, context, [test_event])
    assert [state["entity"] for state in stack.states().values()] == ["sink_test"]


def test_several_accounts_are_accepted_when_listed(stack, consumer, context, monkeypatch):
    from twilio_sink import config

    monkeypatch.setenv("TWILIO_ACCOUNT_SIDS", f"{OURS},{THEIRS}")
    config.settings.cache_clear()
    consume(consumer, context, [FOREIGN["other-account-in-source"]])
    assert stack.states()["message#MMforeign"]["status"] == "queued"


def test_a_subaccount_token_signs_only_that_subaccounts_events(stack, webhook, context, monkeypatch):
    from twilio_sink import aws, config

    # Both accounts are accepted, each with its own token: the ISV shape of contract 1.
    monkeypatch.setenv("TWILIO_ACCOUNT_SIDS", f"{OURS},{THEIRS}")
    config.settings.cache_clear()
    boto3.client("secretsmanager").put_secret_value(SecretId=stack.secret_arn, SecretString=json.dumps(
        {"accounts": {OURS: "our-token", THEIRS: "their-token"}}))
    aws.reset_clients()
    theirs = FOREIGN["other-account-in-source"]
    # Their token vouches for their events, not ours...
    signed_by_them = webhook_event(json.dumps([f.message("queued"), theirs]), token="their-token")
    response = webhook.lambda_handler(signed_by_them, context)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["problems"] == [
        {"index": 0, "reason": "foreign_account", "detail": json.loads(response["body"])["problems"][0]["detail"]}]
    assert set(stack.states()) == {"message#MMforeign"}
    # ...and ours for ours.
    response = webhook.lambda_handler(webhook_event(json.dumps([f.message("queued")]), token="our-token"), context)
    assert response["statusCode"] == 200
    assert set(stack.states()) == {"message#MMforeign", "message#MM1"}


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s["type"].rsplit(".", 1)[-1] + ":" + s["id"][-4:])
def test_every_sample_names_exactly_our_account(sample):
    assert set(accounts_named(to_cloudevent(sample))) in ({OURS}, {SAMPLE_SUBACCOUNT_SID})  # the accounts the stack accepts


def test_a_call_that_names_its_account_only_in_its_parameters_is_ours(stack, consumer, context):
    # Given a call event whose source carries no account path, only the callback's AccountSid
    event = call_event({"AccountSid": OURS, "CallStatus": "ringing"}, "/v1/Calls/CAforeign")
    # When it arrives, Then it is applied, and the state records the account the allow-list read
    assert consume(consumer, context, [event]) == {"batchItemFailures": []}
    assert stack.dead_letters() == []
    assert stack.states()["call#CAforeign"]["account_sid"] == OURS


def test_the_accepted_accounts_are_required_and_checked(monkeypatch):
    from pydantic import ValidationError

    from twilio_sink.config import Settings

    base = {"STATUS_TABLE_NAME": "t", "TOPIC_ARN": "a", "DEAD_LETTER_QUEUE_URL": "q"}
    for wrong in ({}, {"TWILIO_ACCOUNT_SIDS": ""}, {"TWILIO_ACCOUNT_SIDS": "AC123"},
                  {"TWILIO_ACCOUNT_SIDS": f"{OURS},nope"}, {"TWILIO_ACCOUNT_SIDS": OURS.upper()}):
        with pytest.raises(ValidationError):
            Settings.model_validate(base | wrong)
    # In order, once each: the first is the main account, whose token is the secret's `auth_token`
    assert Settings.model_validate(base | {"TWILIO_ACCOUNT_SIDS": f" {OURS} ,{THEIRS},{OURS}"}).twilio_account_sids == (
        OURS, THEIRS)
