"""tools/sink_ops/connect.py against Twilio's REST API mocked at the HTTP layer (responses) and AWS in moto.

The Kinesis hand-shake is played end to end: when Twilio is asked for a test event, the real stream
consumer receives one, and the command must find its test_id in the table and validate with it.
"""

import json
import uuid
from urllib.parse import parse_qs

import boto3
import pytest
import responses

from sink_dev.samples import SAMPLE_ACCOUNT_SID
from sink_ops import connect as twilio_setup
from tests.support.sinks import consume
from twilio_sink.registry import FAMILIES, known_types

EVENTS = "https://events.twilio.com/v1"
SINK = "DG" + "0" * 32
ACCOUNT = SAMPLE_ACCOUNT_SID  # the account the stack accepts: its sink test event must reach the table
STACK_OUTPUTS = {"WebhookUrl": "https://abc.execute-api.us-east-1.amazonaws.com/events",
                 "StreamArn": "arn:aws:kinesis:us-east-1:123456789012:stream/twilio",
                 "TwilioRoleArn": "arn:aws:iam::123456789012:role/twilio-writer"}


@pytest.fixture
def twilio(monkeypatch):
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "token")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, f"{EVENTS}/Sinks", json={"sid": SINK, "status": "initialized"}, status=201)
        mock.add(responses.POST, f"{EVENTS}/Subscriptions", json={"sid": "DF" + "2" * 32}, status=201)
        yield mock


def form(call) -> dict[str, list[str]]:
    return parse_qs(call.request.body)


def deploy_outputs(stack, outputs: dict) -> None:
    """A CloudFormation stack in moto whose outputs are the sink stack's."""
    template = {"Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {name: {"Value": value} for name, value in outputs.items()}}
    boto3.client("cloudformation").create_stack(StackName="sink", TemplateBody=json.dumps(template))


def test_default_types_are_every_known_type_with_its_familys_latest_schema_version():
    types = {entry["type"]: entry["schema_version"] for entry in twilio_setup.subscription_types(None)}
    assert twilio_setup.TEST_EVENT_TYPE not in types
    assert set(types) == set(known_types()) - {twilio_setup.TEST_EVENT_TYPE}  # the registry is the one source
    assert types["com.twilio.comms-api.message.queued"] == 3
    assert types["com.twilio.comms-api.message.delivered"] == types["com.twilio.comms-api.message.read"] == 4
    assert types["com.twilio.comms-api.message.inbound-received"] == 2
    assert types["com.twilio.comms-api.operation.completed"] == 2
    assert types["com.twilio.messaging.compliance.brand-registration.brand-failure"] == 3
    assert types["com.twilio.messaging.message.delivered"] == 8
    assert types["com.twilio.voice.status-callback.call.completed"] == 2


def test_a_chosen_subset_and_an_unknown_pattern():
    chosen = twilio_setup.subscription_types(["com.twilio.comms-api.operation.*"])
    assert [e["type"].rsplit(".", 1)[1] for e in chosen] == ["completed", "processing", "scheduled"]
    with pytest.raises(twilio_setup.SetupError, match="no known event type matches com.twilio.nope"):
        twilio_setup.subscription_types(["com.twilio.nope"])


def test_a_type_prefix_chooses_every_type_under_it():
    chosen = [e["type"] for e in twilio_setup.subscription_types(["com.twilio.voice."])]
    assert len(chosen) == 11 and all(t.startswith("com.twilio.voice.") for t in chosen)


def test_families_by_name_with_each_familys_versions():
    chosen = twilio_setup.subscription_types(None, ["calls", "verifications"])
    calls, verifications = (next(f for f in FAMILIES if f.name == n) for n in ("calls", "verifications"))
    assert {e["type"] for e in chosen} == set(calls.types) | set(verifications.types)
    assert {e["schema_version"] for e in chosen} == {2, 3}
    only_completed = twilio_setup.subscription_types(["*completed"], ["calls"])
    assert len(only_completed) == 2  # the current type and the deprecated one
    with pytest.raises(twilio_setup.SetupError, match="no family named nope"):
        twilio_setup.subscription_types(None, ["nope"])


def test_list_types_names_each_family(capsys):
    assert twilio_setup.main(["--list-types"]) == 0
    out = capsys.readouterr().out
    assert "calls" in out and "com.twilio.voice.status-callback.call.answered  (schema version 2)" in out


def test_webhook_sink_from_the_stack_outputs_is_created_and_subscribed(stack, twilio, capsys):
    deploy_outputs(stack, STACK_OUTPUTS)
    code = twilio_setup.main(["webhook", "--stack", "sink", "--types", "com.twilio.comms-api.message.*"])
    assert code == 0
    create, subscribe = twilio.calls[0], twilio.calls[1]
    sent = form(create)
    assert sent["SinkType"] == ["webhook"]
    assert json.loads(sent["SinkConfiguration"][0]) == {
        "destination": STACK_OUTPUTS["WebhookUrl"], "method": "POST", "batch_events": True}
    subscription = form(subscribe)
    assert subscription["SinkSid"] == [SINK]
    types = [json.loads(t) for t in subscription["Types"]]
    assert {"type": "com.twilio.comms-api.message.queued", "schema_version": 3} in types
    assert len(types) == 7
    assert "subscription DF" in capsys.readouterr().out


def test_kinesis_sink_hand_shake_validates_with_the_test_id_that_reached_the_table(
        stack, twilio, consumer, context, capsys):
    test_id = str(uuid.uuid4())

    def twilio_writes_a_test_event(request):
        # What Twilio does on POST /Sinks/{sid}/Test: a test event on the stream, read by the consumer.
        event = {"specversion": "1.0", "type": "com.twilio.eventstreams.test-event", "source": "Sink",
                 "id": ACCOUNT, "dataschema": "https://events-schemas.twilio.com/EventStreams.TestSink/1",
                 "datacontenttype": "application/json", "time": "2026-01-01T12:00:00.000Z",
                 "data": {"test_id": test_id, "name": "sink test"}}
        assert consume(consumer, context, [event]) == {"batchItemFailures": []}
        return 201, {}, json.dumps({"result": "submitted"})

    twilio.add_callback(responses.POST, f"{EVENTS}/Sinks/{SINK}/Test", callback=twilio_writes_a_test_event)
    twilio.add(responses.POST, f"{EVENTS}/Sinks/{SINK}/Validate", json={"result": "valid"}, status=201)
    deploy_outputs(stack, STACK_OUTPUTS | {"StatusTableName": stack.table_name})

    assert twilio_setup.main(["kinesis", "--stack", "sink", "--external-id", "ext-123", "--wait", "30"]) == 0
    urls = [call.request.url for call in twilio.calls]
    assert urls == [f"{EVENTS}/Sinks", f"{EVENTS}/Sinks/{SINK}/Test", f"{EVENTS}/Sinks/{SINK}/Validate",
                    f"{EVENTS}/Subscriptions"]  # subscribing needs an active (validated) sink
    assert json.loads(form(twilio.calls[0])["SinkConfiguration"][0]) == {
        "arn": STACK_OUTPUTS["StreamArn"], "role_arn": STACK_OUTPUTS["TwilioRoleArn"], "external_id": "ext-123"}
    assert form(twilio.calls[2])["TestId"] == [test_id]
    assert len(form(twilio.calls[3])["Types"]) == len(known_types()) - 1  # all but the test event
    assert f"validating sink {SINK} with test_id {test_id}" in capsys.readouterr().out


def test_an_earlier_test_event_is_not_taken_for_this_one(stack, twilio, consumer, context, capsys):
    old = {"specversion": "1.0", "type": "com.twilio.eventstreams.test-event", "source": "Sink", "id": ACCOUNT,
           "time": "2025-01-01T00:00:00.000Z", "data": {"test_id": "old-test"}}
    consume(consumer, context, [old])
    twilio.add(responses.POST, f"{EVENTS}/Sinks/{SINK}/Test", json={"result": "submitted"}, status=201)
    args = ["kinesis", "--sink-sid", SINK, "--table", stack.table_name, "--wait", "0",
            "--stream-arn", "x", "--role-arn", "y", "--external-id", "z"]
    assert twilio_setup.main(args) == 1
    err = capsys.readouterr().err
    assert "no test event reached" in err and f"--sink-sid {SINK}" in err
    assert not [c for c in twilio.calls if c.request.url.endswith(("/Validate", "/Subscriptions"))]


def test_twilio_refusal_is_a_clear_error(stack, twilio, capsys):
    twilio.replace(responses.POST, f"{EVENTS}/Sinks", json={"code": 20003, "message": "Authenticate"}, status=401)
    assert twilio_setup.main(["webhook", "--webhook-url", "https://example.com/events"]) == 1
    assert "Twilio answered 401" in capsys.readouterr().err


def test_missing_credentials_and_missing_values(monkeypatch, capsys):
    monkeypatch.delenv("TWILIO_ACCOUNT_SID", raising=False)
    assert twilio_setup.main(["webhook", "--webhook-url", "https://example.com/events"]) == 1
    assert "TWILIO_ACCOUNT_SID" in capsys.readouterr().err
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT)
    monkeypatch.setenv("TWILIO_API_KEY", "SK1")
    monkeypatch.setenv("TWILIO_API_SECRET", "secret")
    assert twilio_setup.main(["webhook"]) == 1
    assert "no WebhookUrl: give --stack or --webhook-url" in capsys.readouterr().err


def test_help_and_list_types(capsys):
    with pytest.raises(SystemExit) as exit_:
        twilio_setup.main(["kinesis", "--help"])
    assert exit_.value.code == 0 and "--external-id" in capsys.readouterr().out
    assert twilio_setup.main(["--list-types"]) == 0
    assert "com.twilio.comms-api.message.queued  (schema version 3)" in capsys.readouterr().out
