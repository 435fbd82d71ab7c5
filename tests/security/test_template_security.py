"""What the template promises about access: the external id is a real secret, and each function may
call exactly what its code calls (recorded from real invocations, not copied from the code)."""

import json
import re
from collections import defaultdict

import pytest

from sink_dev.paths import TEMPLATE
from sink_dev.samples import load_samples
from sink_dev.template import load_template
from sink_ops import external_id
from tests.support import factories as f
from tests.support.sinks import consume, post

TEMPLATE_BODY = load_template(TEMPLATE)


def external_id_pattern() -> str:
    return TEMPLATE_BODY["Parameters"]["TwilioExternalId"]["AllowedPattern"]


def test_the_external_id_is_secret_and_required():
    parameter = TEMPLATE_BODY["Parameters"]["TwilioExternalId"]
    assert parameter["NoEcho"] is True and "Default" not in parameter
    assert parameter["MinLength"] >= 32
    assert "TwilioExternalId" not in json.dumps([o["Value"] for o in TEMPLATE_BODY["Outputs"].values()])


@pytest.mark.parametrize("weak", [
    "ext-123",  # the old minimum was 2 characters
    "a" * 40,  # no digit
    "1" * 40,  # no letter
    "abcdefgh1" + "x" * 31,  # a run of 8 equal characters
    "password1password1password1passw",  # 32 characters, but... (see below)
    "0123456789abcdef0123456789abcde",  # 31 characters
    "has space in it 1234567890abcdefghij",
])
def test_the_deploy_time_check_refuses_short_or_uniform_values(weak):
    matches = re.fullmatch(external_id_pattern(), weak) is not None
    # A human-chosen 32-character phrase still passes a pattern: the check is a floor, the generator the way.
    assert matches is (weak == "password1password1password1passw")


def test_the_generator_passes_the_templates_own_check_and_never_repeats():
    assert external_id_pattern() == external_id.ALLOWED_PATTERN
    values = {external_id.generate() for _ in range(200)}
    assert len(values) == 200
    assert all(re.fullmatch(external_id_pattern(), value) and len(value) >= 43 for value in values)


def test_the_generator_command_prints_one(capsys):
    assert external_id.main([]) == 0
    assert re.fullmatch(external_id_pattern(), capsys.readouterr().out.strip())


def test_the_account_allow_list_is_required_and_checked_at_deploy():
    parameter = TEMPLATE_BODY["Parameters"]["TwilioAccountSids"]
    assert "Default" not in parameter
    pattern = parameter["AllowedPattern"]
    assert re.fullmatch(pattern, "AC" + "a" * 32) and re.fullmatch(pattern, "AC" + "a" * 32 + ",AC" + "b" * 32)
    for wrong in ["", "AC123", "ac" + "a" * 32, "AC" + "a" * 32 + ",", "*"]:
        assert not re.fullmatch(pattern, wrong)
    assert TEMPLATE_BODY["Globals"]["Function"]["Environment"]["Variables"]["TWILIO_ACCOUNT_SIDS"] == {
        "Ref": "TwilioAccountSids"}


# ------------------------------------------------------------------------------ only what the code calls

# IAM authorises these API calls as these actions (TransactWriteItems: per item it carries).
IAM_ACTION = {
    ("sns", "PublishBatch"): "sns:Publish",
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
}


def iam_actions(service: str, operation: str, params: dict) -> set[str]:
    if (service, operation) == ("dynamodb", "TransactWriteItems"):
        kinds = {next(iter(item)) for item in params["TransactItems"]}
        return {f"dynamodb:{'ConditionCheckItem' if k == 'ConditionCheck' else k + 'Item'}" for k in kinds}
    return {IAM_ACTION.get((service, operation)) or f"{service}:{operation}"}


@pytest.fixture
def calls(stack):
    """Every AWS call the core makes through its clients, as IAM actions, per service name."""
    from twilio_sink import aws

    made: dict[str, set[str]] = defaultdict(set)
    for service in ("dynamodb", "sns", "sqs", "secretsmanager"):
        client = aws.client(service)
        client.meta.events.register(
            "before-parameter-build", lambda model, params, service=service, **_: made[service].update(
                iam_actions(service, model.name, params)))
    return made


def granted_to(logical_id: str) -> set[str]:
    resources = TEMPLATE_BODY["Resources"]
    statements = list(resources["StatusTableWritePolicy"]["Properties"]["PolicyDocument"]["Statement"])
    props = resources[logical_id]["Properties"]
    if "Role" in props:
        role = resources["StreamConsumerRole"]["Properties"]
        statements += [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    actions = {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    # SAM's policy templates, by what they grant (SQSSendMessagePolicy: sqs:SendMessage*).
    templates = {"SNSPublishMessagePolicy": "sns:Publish", "SQSSendMessagePolicy": "sqs:SendMessage",
                 "AWSSecretsManagerGetSecretValuePolicy": "secretsmanager:GetSecretValue"}
    actions |= {templates[name] for p in props.get("Policies", []) if isinstance(p, dict) for name in p
                if name in templates}
    # The event source mapping, Lambda itself and X-Ray call these on the function's behalf, not the code.
    return {a for a in actions if not a.startswith(("kinesis:", "logs:", "xray:"))}


def exercise(stack, run) -> None:
    """New entities (PutItem), known ones (UpdateItem), outbox clean-up, a dead letter, the secret."""
    samples = load_samples()
    run(samples)
    run([f.message("read", message_id=s["data"]["message_id"], seconds=10**6) for s in samples
         if s["type"].startswith("com.twilio.comms-api.message.")] + [b"{not json"])


def test_the_stream_consumer_may_call_exactly_what_it_calls(stack, consumer, context, calls):
    exercise(stack, lambda items: consume(consumer, context, items))
    assert set().union(*calls.values()) == granted_to("StreamConsumerFunction")


def test_the_webhook_may_call_exactly_what_it_calls(stack, webhook, context, calls):
    exercise(stack, lambda items: post(webhook, context, "[" + ",".join(
        i.decode() if isinstance(i, bytes) else json.dumps(i) for i in items) + "]"))
    assert set().union(*calls.values()) == granted_to("WebhookFunction")
