"""The reconciler's part of template.yaml: what the code reads and emits is what the template declares."""

import time

import pytest

from sink_dev.template import load_template
from tests.template.test_template import alarm_for, env_of, function_props, parameter_value
from twilio_sink import store
from twilio_sink.families.base import Family
from twilio_sink.reconcile import RESOURCES
from twilio_sink.registry import FAMILIES


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


def test_the_function_runs_on_a_schedule_a_parameter_turns_on(template):
    function = template["Resources"]["ReconcilerFunction"]
    assert function["Condition"] == "ReconcilerOn"
    assert template["Conditions"]["ReconcilerOn"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ReconcileEveryMinutes"}, 0]}]}
    assert template["Parameters"]["ReconcileEveryMinutes"]["Default"] == 0
    (event,) = function["Properties"]["Events"].values()
    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"] == {"Fn::Sub": "rate(${ReconcileEveryMinutes} minutes)"}
    # rate(1 minutes) is invalid: the parameter never offers 1.
    assert 1 not in template["Parameters"]["ReconcileEveryMinutes"]["AllowedValues"]
    props = function_props(template, "ReconcilerFunction")
    assert props["CodeUri"] == "functions/reconciler/" and props["Handler"] == "app.lambda_handler"
    assert props["ReservedConcurrentExecutions"] == 1
    for dependent in ("ReconcilerLogGroup", "ReconcilerCorrectionsAlarm", "ReconcilerErrorsAlarm"):
        assert template["Resources"][dependent]["Condition"] == "ReconcilerOn"


def test_the_function_reads_its_api_keys_and_nothing_more(template):
    env = env_of(template, "ReconcilerFunction")
    assert env["TWILIO_API_KEYS_SECRET_ARN"] == {"Ref": "TwilioApiKeysSecret"}
    assert "AUTH_TOKEN_SECRET_ARN" not in env
    index = {"Fn::Sub": "${StatusTable.Arn}/index/" + store.UNSETTLED_INDEX}
    assert function_props(template, "ReconcilerFunction")["Policies"] == [
        {"Ref": "StatusTableWritePolicy"},
        {"Statement": [{"Sid": "UnsettledIndexQuery", "Effect": "Allow", "Action": "dynamodb:Query",
                        "Resource": index}]},
        {"SNSPublishMessagePolicy": {"TopicName": {"Fn::GetAtt": ["NotificationTopic", "TopicName"]}}},
        {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}},
        {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "TwilioApiKeysSecret"}}},
    ]
    assert "TwilioApiKeysSecretArn" in template["Outputs"]


def test_the_index_is_what_the_store_queries(template):
    table = template["Resources"]["StatusTable"]["Properties"]
    (index,) = [i for i in table["GlobalSecondaryIndexes"] if i["IndexName"] == store.UNSETTLED_INDEX]
    assert index["KeySchema"] == [{"AttributeName": store.UNSETTLED, "KeyType": "HASH"},
                                  {"AttributeName": store.CHECK_AFTER, "KeyType": "RANGE"}]
    # What reconcile.py reads of an index item, without reading the table again.
    assert {"entity", "id", "status", "event_type", "data", "version", "updated_at"} <= set(
        index["Projection"]["NonKeyAttributes"])


def test_the_corrections_alarm_watches_what_the_function_emits(template):
    env = env_of(template, "ReconcilerFunction")
    namespace = parameter_value(template, env["POWERTOOLS_METRICS_NAMESPACE"])
    alarm = alarm_for(template, namespace, "ReconcilerCorrections", {"service": env["POWERTOOLS_SERVICE_NAME"]})
    assert alarm["Threshold"] == {"Ref": "ReconcilerCorrectionsAlarmThreshold"}
    assert alarm["Statistic"] == "Sum" and alarm["ComparisonOperator"] == "GreaterThanThreshold"


@pytest.mark.parametrize("family", [f for f in FAMILIES if f.stale_after is not None], ids=lambda f: f.entity)
def test_every_reconciled_family_has_a_resource_speaking_its_words(family: Family):
    resource = RESOURCES[type(family)]
    assert set(resource.STATUSES.values()) <= set(family.status_words)
    assert family.final < set(family.status_words)


def test_the_reconciler_may_call_exactly_what_it_calls(stack, consumer, context, twilio_api, make_reconciler):
    from datetime import timedelta

    from tests.reconcile.histories import message_sid
    from tests.security.test_template_security import iam_actions
    from tests.support import factories
    from tests.support.fake_twilio import ACCOUNT
    from tests.support.sinks import consume
    from twilio_sink import aws

    # Given a correction (state write, publish, outbox clean-up) and a 404 (postponed)
    consume(consumer, context, [factories.message("sent", message_sid(1), 1, account_sid=ACCOUNT),
                                factories.message("sent", message_sid(2), 1, account_sid=ACCOUNT)])
    twilio_api.message(message_sid(1), "delivered", factories.BASE_TIME + timedelta(seconds=2))
    made: set[str] = set()
    for service in ("dynamodb", "sns", "sqs"):
        aws.client(service).meta.events.register(
            "before-parameter-build",
            lambda model, params, service=service, **_: made.update(iam_actions(service, model.name, params)))

    # When it runs
    counts = make_reconciler().run(time.monotonic() + 3600)
    assert counts["corrected"] == 1 and counts["not_found"] == 1

    # Then every call it made is granted, and every grant but the dead letters' queue is used
    template = load_template()
    resources = template["Resources"]
    statements = list(resources["StatusTableWritePolicy"]["Properties"]["PolicyDocument"]["Statement"])
    statements += [s for p in resources["ReconcilerFunction"]["Properties"]["Policies"]
                   if isinstance(p, dict) for s in p.get("Statement", [])]
    granted = {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    granted |= {"sns:Publish", "sqs:SendMessage"}  # its SAM policy templates (the secret: test_reconciler.py)
    assert made <= granted
    # Unused here, and why granted: dead letters (a correction the pipeline refuses), new entities (the
    # table policy is shared with the sinks).
    assert granted - made == {"sqs:SendMessage", "dynamodb:PutItem"}
