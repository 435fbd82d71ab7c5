"""The reconciler's part of template.yaml: what the code reads and emits is what the template declares."""

import re
import time
from dataclasses import fields

import pytest

from sink_dev.template import load_template
from sink_local.twilio_api import ACCOUNT
from tests.template.test_template import alarm_for, env_of, function_props, parameter_value
from twilio_sink import state, store
from twilio_sink.families.base import Family
from twilio_sink.reconcile.resources import RESOURCES
from twilio_sink.registry import FAMILIES, UNMODELLED


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
    # Twilio's own endpoints unless a local run points it at a stand-in.
    assert env["TWILIO_API_BASE_URL"] == {"Ref": "TwilioApiBaseUrl"}
    assert template["Parameters"]["TwilioApiBaseUrl"]["Default"] == ""
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
    assert index["KeySchema"] == [{"AttributeName": state.UNSETTLED, "KeyType": "HASH"},
                                  {"AttributeName": state.CHECK_AFTER, "KeyType": "RANGE"}]
    # What reconcile/run.py reads of an index item, without reading the table again. Not `account_sid`
    # (read from the table when the payload names no account): an existing index's projection cannot
    # change in place on a deployed stack.
    assert {"entity", "id", "status", "event_type", "data", "version", "updated_at"} == {
        field.name for field in fields(state.DueEntity)} - {"pk"} <= set(index["Projection"]["NonKeyAttributes"])


def test_the_by_operation_index_projects_what_the_status_command_reads(template):
    table = template["Resources"]["StatusTable"]["Properties"]
    (index,) = [i for i in table["GlobalSecondaryIndexes"] if i["IndexName"] == store.BY_OPERATION_INDEX]
    assert {field.name for field in fields(state.OperationMessage)} - {"pk"} <= set(
        index["Projection"]["NonKeyAttributes"])


def test_the_corrections_alarm_watches_what_the_function_emits(template):
    env = env_of(template, "ReconcilerFunction")
    namespace = parameter_value(template, env["POWERTOOLS_METRICS_NAMESPACE"])
    alarm = alarm_for(template, namespace, "ReconcilerCorrections", {"service": env["POWERTOOLS_SERVICE_NAME"]})
    assert alarm["Threshold"] == {"Ref": "ReconcilerCorrectionsAlarmThreshold"}
    assert alarm["Statistic"] == "Sum" and alarm["ComparisonOperator"] == "GreaterThanThreshold"


RECONCILED = [f for f in FAMILIES if f.quiet_after is not None]


def test_the_families_with_a_threshold_are_exactly_those_with_a_resource():
    # A family whose entities enter the Unsettled index (quiet_after) must be asked about; a resource of a
    # family that never enters it would never be used.
    assert set(RESOURCES) == {type(family) for family in RECONCILED}


@pytest.mark.parametrize("family", RECONCILED, ids=lambda f: f.entity)
def test_every_reconciled_family_has_a_resource_speaking_its_words(family: Family):
    resource = RESOURCES[type(family)]
    assert set(resource.STATUSES.values()) <= set(family.status_words)
    assert family.final < set(family.status_words)
# A stored payload per reconciled family, as its events leave it (the status before the correction,
# restated where the family's payload restates it).
STORED = {
    "comms-messages": {"message_id": "SM" + "1" * 32, "attempt": "1", "account_sid": ACCOUNT},
    "message-status": {"messageSid": "SM" + "1" * 32, "messageStatus": "SENT", "accountSid": ACCOUNT,
                       "eventName": "com.twilio.messaging.message.sent"},
    "brands": {"brandsid": "BN" + "1" * 32, "accountsid": ACCOUNT, "brandstatus": "unverified"},
    "campaigns": {"campaignsid": "CM" + "1" * 32, "messagingservicesid": "MG" + "1" * 32, "accountsid": ACCOUNT,
                  "campaignregistrationstatus": "submitted"},
    "toll-free": {"tollfreeverificationsid": "HH" + "1" * 32, "accountsid": ACCOUNT, "verificationstatus": "requested"},
    "calls": {"sid": "CA" + "1" * 32, "request": {"method": "POST", "parameters": {
        "CallSid": "CA" + "1" * 32, "CallStatus": "ringing", "AccountSid": ACCOUNT}}},
}


@pytest.mark.parametrize("family", RECONCILED, ids=lambda f: f.name)
def test_every_answer_is_an_event_of_the_family_that_sets_twilios_status(family: Family):
    from types import SimpleNamespace

    from tests.support.factories import BASE_TIME
    from twilio_sink.envelope import to_cloudevent
    from twilio_sink.reconcile.corrections import synthetic_event
    from twilio_sink.registry import accounts_named, family_of, route

    resource = RESOURCES[type(family)]
    stored = STORED[family.name]
    entity_id = family.entity_id(None, family.data_model.model_validate(stored))  # type: ignore[arg-type]
    for twilio_status, word in resource.STATUSES.items():
        # Twilio's answer as the `twilio` package returns it, with what each resource reads.
        answer = SimpleNamespace(sid=entity_id, status=twilio_status, campaign_status=twilio_status,
                                 campaign_id=None, date_updated=BASE_TIME, account_sid=ACCOUNT, error_code=None,
                                 messaging_service_sid="MG" + "1" * 32)
        event = to_cloudevent(synthetic_event(resource, entity_id, stored, resource.truth(answer)))
        change = route(event)
        assert type(family_of(event.type)) is type(family), twilio_status
        assert (change.entity, change.entity_id, change.status) == (family.entity, entity_id, word), twilio_status
        assert set(accounts_named(event)) == {ACCOUNT}  # the allow-list accepts it
        # A complete event of its family: no field still names the status it corrects.
        old_status = route(to_cloudevent(stored_event(family, stored))).status
        if word != old_status:
            named = {value.lower() for value in leaves(event.data)}
            assert not named & {old_status, old_status.upper().lower(), stored_event(family, stored)["type"]}, (
                twilio_status, sorted(named))


# How seed 003's samples spell each registration status in the payload (its `brandstatus` of a registered
# brand, its `campaignregistrationstatus` of a submitted, approved, failed campaign).
EVENT_WORDS = {"brands": ("brandstatus", {"registered", "registration_failed"}),
               "campaigns": ("campaignregistrationstatus", {"pending", "success", "failure"})}


@pytest.mark.parametrize("name", EVENT_WORDS)
def test_a_registration_correction_spells_its_status_as_the_events_do(name):
    from types import SimpleNamespace

    from tests.support.factories import BASE_TIME
    from twilio_sink.reconcile.corrections import synthetic_event

    family = next(f for f in RECONCILED if f.name == name)
    resource = RESOURCES[type(family)]
    field, words = EVENT_WORDS[name]
    stored = STORED[name]
    entity_id = family.entity_id(None, family.data_model.model_validate(stored))  # type: ignore[arg-type]
    spelled = set()
    for twilio_status in resource.STATUSES:
        answer = SimpleNamespace(sid=entity_id, status=twilio_status, campaign_status=twilio_status,
                                 campaign_id=None, date_updated=BASE_TIME, account_sid=ACCOUNT, error_code=None,
                                 messaging_service_sid="MG" + "1" * 32)
        spelled.add(synthetic_event(resource, entity_id, stored, resource.truth(answer))["data"][field])
    assert spelled <= words, spelled - words


def stored_event(family: Family, stored: dict) -> dict:
    """The event that left `stored`: of the family's type for its restated status, else its first type."""
    restated = stored.get("eventName") or next(iter(family.types))
    if family.name == "calls":
        restated = "com.twilio.voice.status-callback.call.ringing"
    return {"specversion": "1.0", "type": restated, "source": "test", "id": "EZ1", "time": "2026-01-01T00:00:00Z",
            "data": stored}


def leaves(value) -> list[str]:
    """Every string in a payload, at any depth."""
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in leaves(item)]
    return [value] if isinstance(value, str) else []


def test_every_family_is_reconciled_or_listed_as_not_reconcilable():
    from sink_dev.paths import ROOT

    section = (ROOT / "docs" / "operations.md").read_text().split("## Reconciliation and backfill", 1)[1]
    section = section.split("\n## ", 1)[0]
    assert set(STORED) == {family.name for family in RECONCILED}
    for family in RECONCILED:
        minutes = int(family.quiet_after.total_seconds() // 60)  # type: ignore[union-attr]
        threshold = f"{minutes} min" if minutes < 60 else f"{minutes // 60} h"
        row = re.search(rf"^\| `{family.name}` \(`{family.entity}`\) \|.*\| {threshold} \|$", section, re.MULTILINE)
        assert row, f"{family.name}: no row with its threshold ({threshold}) in the reconciliation table"
        finals = re.search(rf"^- `{family.name}`: (.*)$", section, re.MULTILINE)
        assert finals and set(re.findall(r"`([\w-]+)`", finals[1].split("(")[0])) == set(family.final), family.name
    listed = section.split("**Not reconcilable**", 1)[1].split("\n\n", 1)[0]
    for family in [f for f in FAMILIES if f.quiet_after is None] + [UNMODELLED]:
        assert f"`{family.name}`" in listed, f"{family.name} is neither reconciled nor listed as not reconcilable"


def test_the_reconciler_may_call_exactly_what_it_calls(stack, consumer, context, twilio_api, make_reconciler):
    from datetime import timedelta

    from sink_local.twilio_api import ACCOUNT
    from tests.reconcile.histories import message_sid
    from tests.security.test_template_security import iam_actions
    from tests.support import factories
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


# The `twilio` package's instance class of what each resource asks, the builder of the stand-in's
# records, and the instance's fields the sink reads (reconcile/resources.py and the backfill command's listings).
PACKAGE_CLASSES = {
    "comms-messages": ("twilio.rest.api.v2010.account.message", "MessageInstance", "message"),
    "message-status": ("twilio.rest.api.v2010.account.message", "MessageInstance", "message"),
    "calls": ("twilio.rest.api.v2010.account.call", "CallInstance", "call"),
    "brands": ("twilio.rest.messaging.v1.brand_registration", "BrandRegistrationInstance", "brand"),
    "campaigns": ("twilio.rest.messaging.v1.service.us_app_to_person", "UsAppToPersonInstance", "campaign"),
    "toll-free": ("twilio.rest.messaging.v1.tollfree_verification", "TollfreeVerificationInstance",
                  "tollfree_verification"),
}
FIELDS_READ = {
    "MessageInstance": {"sid", "account_sid", "status", "error_code", "date_updated", "date_sent"},
    "CallInstance": {"sid", "account_sid", "status", "date_updated", "start_time"},
    "BrandRegistrationInstance": {"sid", "account_sid", "status", "date_updated"},
    "UsAppToPersonInstance": {"sid", "account_sid", "campaign_status", "campaign_id", "brand_registration_sid",
                              "messaging_service_sid", "date_updated"},
    "TollfreeVerificationInstance": {"sid", "account_sid", "status", "date_updated"},
}
SID_PREFIX = {"message": "SM", "call": "CA", "brand": "BN", "campaign": "QE", "tollfree_verification": "HH"}


@pytest.mark.parametrize("family", RECONCILED, ids=lambda f: f.name)
def test_each_resource_speaks_the_twilio_packages_words_and_the_stand_in_its_shape(family: Family):
    import importlib
    import inspect
    from datetime import UTC, datetime

    from sink_local.twilio_api import TwilioApi

    module, name, builder = PACKAGE_CLASSES[family.name]
    instance_class = getattr(importlib.import_module(module), name)
    # Every Twilio status a resource maps is one the package declares (campaigns' is free text there).
    if hasattr(instance_class, "Status"):
        declared = {value for key, value in vars(instance_class.Status).items() if not key.startswith("_")}
        assert set(RESOURCES[type(family)].STATUSES) <= declared
    # Every field the sink reads is one the package reads from Twilio's answer under that name, and one
    # the stand-in answers.
    read = set(re.findall(r'payload\.get\(\s*"(\w+)"', inspect.getsource(instance_class.__init__)))
    assert FIELDS_READ[name] <= read, sorted(FIELDS_READ[name] - read)
    api = TwilioApi()
    try:
        extra = ("MG" + "1" * 32,) if builder == "campaign" else ()
        getattr(api, builder)(SID_PREFIX[builder] + "1" * 32, *extra, "x", datetime(2026, 1, 1, tzinfo=UTC))
        record = next(iter(next(store for store in (api.messages, api.calls, api.brands, api.campaigns, api.tollfree)
                                if store).values()))
    finally:
        api.server.server_close()
    assert FIELDS_READ[name] <= set(record), sorted(FIELDS_READ[name] - set(record))


# What the stand-in holds for each family's entity (Twilio's status other than the stored one), and
# where it keeps the record.
TWILIO_HOLDS = {
    "comms-messages": ("message", "delivered", "messages"),
    "message-status": ("message", "delivered", "messages"),
    "calls": ("call", "completed", "calls"),
    "brands": ("brand", "APPROVED", "brands"),
    "campaigns": ("campaign", "VERIFIED", "campaigns"),
    "toll-free": ("tollfree_verification", "TWILIO_APPROVED", "tollfree"),
}


@pytest.mark.parametrize("family", RECONCILED, ids=lambda f: f.name)
def test_a_correction_names_the_resource_that_answered_as_its_source(family: Family, twilio_api):
    from datetime import UTC, datetime
    from urllib.parse import urlsplit

    from sink_local.twilio_api import API_KEY_SECRET, API_KEY_SID
    from twilio_sink.envelope import to_cloudevent
    from twilio_sink.reconcile.client import ApiKey, Twilio
    from twilio_sink.reconcile.corrections import synthetic_event
    from twilio_sink.registry import accounts_named

    # Given Twilio holding the entity in another status than the stored one
    resource = RESOURCES[type(family)]
    stored = STORED[family.name]
    entity_id = family.entity_id(None, family.data_model.model_validate(stored))  # type: ignore[arg-type]
    builder, status, records = TWILIO_HOLDS[family.name]
    sid = "QE" + "1" * 32 if builder == "campaign" else entity_id
    extra = (stored["messagingservicesid"],) if builder == "campaign" else ()
    getattr(twilio_api, builder)(sid, *extra, status, datetime(2026, 1, 1, tzinfo=UTC))
    record = getattr(twilio_api, records)[sid]

    # When the reconciler asks and writes the correction
    twilio = Twilio({ACCOUNT: ApiKey(API_KEY_SID, API_KEY_SECRET)}, base_url=twilio_api.base_url)
    truth = resource.fetch(twilio, entity_id, stored, ACCOUNT, time.monotonic() + 60)
    event = synthetic_event(resource, entity_id, stored, truth)

    # Then its source is the resource's own address, as Twilio gives it (a 2010-API `uri` is a path)
    address = record.get("url") or "https://api.twilio.com" + record["uri"]
    assert event["source"] == address
    if builder != "campaign":  # a campaign is found in its messaging service's listing
        path, _ = twilio_api.requests[-1]
        product, _, rest = urlsplit(path).path.lstrip("/").partition("/")
        assert f"https://{product}.twilio.com/{rest}" == address
    # And it names no account but the one its payload names: the allow-list and attribution are as before
    assert set(accounts_named(to_cloudevent(event))) == {ACCOUNT}
