"""Issue 20: what Twilio really sends is applied through both doors; the `type` routes, nothing guessed refuses.

Every seed sample as printed (tests/seeds/a2p_guide.py, tests/seeds/comms_api.py), schema names, hosts
and versions Twilio's documents disagree on, events that name no account, and payloads holding only
what places the event: each is applied with one notification and no dead letter.
"""

import json

import boto3
import pytest

from sink_dev.samples import SAMPLE_ACCOUNT_SID, SAMPLE_SUBACCOUNT_SID, webhook_event
from tests.seeds import a2p_guide, comms_api
from tests.support import factories as f
from tests.support.expectations import emitted
from tests.support.sinks import consume, post, without_deadline
from twilio_sink.registry import FAMILIES

DOORS = ["kinesis", "webhook"]
BRAND_TYPES = "com.twilio.messaging.compliance.brand-registration."


@pytest.fixture
def deliver(consumer, webhook, context, monkeypatch):
    """Send a list of events through one door; returns the webhook's status (200 for the stream's success)."""
    without_deadline(monkeypatch)

    def send(door: str, events: list[dict]) -> int:
        if door == "kinesis":
            response = consume(consumer, context, events)
            assert response == {"batchItemFailures": []}
            return 200
        return post(webhook, context, events)[0]
    return send


def only_account(monkeypatch, *sids: str) -> None:
    from twilio_sink import config
    monkeypatch.setenv("TWILIO_ACCOUNT_SIDS", ",".join(sids))
    config.settings.cache_clear()


def applied_once(stack, pk: str, status: str) -> dict:
    """The entity's state is `status`, announced by exactly one notification, with no dead letter."""
    assert stack.dead_letters() == []
    state = stack.states()[pk]
    assert state["status"] == status
    [note] = stack.notifications()
    assert (note["entity"], note["id"], note["status"]) == (state["entity"], state["id"], status)
    return note


# ---- 4. the seeds' samples, as printed ------------------------------------------------------------------

A2P_EXPECTED = {
    "brand-unverified": ("brand#BN" + "1" * 32, "unverified"),
    "brand-registered": ("brand#BN" + "1" * 32, "registered"),
    "brand-failure": ("brand#BN" + "1" * 32, "failed"),
    "campaign-submitted": ("campaign#CM" + "2" * 32, "submitted"),
    "campaign-approved": ("campaign#CM" + "2" * 32, "approved"),
    "campaign-failure": ("campaign#CM" + "2" * 32, "failed"),
    "number-deregistration.failed": ("phone_number#PN" + "4" * 32, "deregistration_failed"),
    "number-deregistration.pending": ("phone_number#PN" + "4" * 32, "deregistration_pending"),
    "number-deregistration.successful": ("phone_number#PN" + "4" * 32, "deregistered"),
    "number-registration.failed": ("phone_number#PN" + "4" * 32, "registration_failed"),
    "number-registration.pending": ("phone_number#PN" + "4" * 32, "registration_pending"),
    "number-registration.successful": ("phone_number#PN" + "4" * 32, "registered"),
}


def test_the_expectations_cover_every_printed_sample():
    assert A2P_EXPECTED.keys() == a2p_guide.SAMPLES.keys()


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("name", list(a2p_guide.SAMPLES))
def test_every_a2p_guide_sample_as_printed_is_applied_once(stack, deliver, door, name):
    # Given the guide's sample, its dataschema host and name and its `CA000…` source kept as printed
    events = a2p_guide.repaired(a2p_guide.SAMPLES[name], SAMPLE_ACCOUNT_SID)
    # When it arrives through either door
    assert deliver(door, events) == 200
    # Then its entity takes the status its type says, once, under the account it names
    pk, status = A2P_EXPECTED[name]
    note = applied_once(stack, pk, status)
    assert stack.states()[pk]["account_sid"] == SAMPLE_ACCOUNT_SID
    assert note["_attributes"]["account_sid"] == SAMPLE_ACCOUNT_SID


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize(("event_type", "schema", "id_field"), comms_api.TYPES)
def test_every_communications_api_type_naming_no_account_is_applied_once(stack, deliver, door, event_type,
                                                                         schema, id_field):
    # Given a seed-000 event whose source and payload name no account, its payload only its id
    event = comms_api.event(event_type, schema, id_field)
    # When it arrives through either door (the local stack accepts two accounts)
    assert deliver(door, [event]) == 200
    # Then it is applied once
    entity = "message" if id_field == "message_id" else "operation"
    status = {"inbound-received": "received"}.get(event_type.rsplit(".", 1)[1], event_type.rsplit(".", 1)[1])
    note = applied_once(stack, f"{entity}#{event['data'][id_field]}", status)
    state = stack.states()[f"{entity}#{event['data'][id_field]}"]
    if door == "webhook":
        # ...under the account whose token verified the delivery: the main token is the first account's
        assert state["account_sid"] == note["_attributes"]["account_sid"] == SAMPLE_ACCOUNT_SID
    else:
        # ...and the stream cannot tell which of two accepted accounts it belongs to: none is recorded
        assert "account_sid" not in state and "account_sid" not in note["_attributes"]


# ---- 2. accounts: refuse what names a foreign one; attribute what names none -----------------------------

UNNAMED = comms_api.event(*comms_api.TYPES[4])  # message.sent, no account anywhere


def test_the_stream_records_an_event_naming_no_account_under_the_only_accepted_account(
        stack, deliver, monkeypatch, capsys):
    only_account(monkeypatch, SAMPLE_ACCOUNT_SID)
    capsys.readouterr()
    deliver("kinesis", [UNNAMED])
    note = applied_once(stack, "message#" + UNNAMED["data"]["message_id"], "sent")
    assert note["_attributes"]["account_sid"] == SAMPLE_ACCOUNT_SID
    assert stack.states()["message#" + UNNAMED["data"]["message_id"]]["account_sid"] == SAMPLE_ACCOUNT_SID
    # ...and counts it, so an operator sees how much traffic is attributed rather than named
    assert [m["EventsWithoutAccount"] for m in emitted(capsys) if "EventsWithoutAccount" in m] == [[1.0]]


def test_the_strict_stream_setting_refuses_an_event_naming_no_account(stack, consumer, context, monkeypatch):
    from twilio_sink import config
    monkeypatch.setenv("STREAM_EVENTS_WITHOUT_ACCOUNT", "refuse")
    config.settings.cache_clear()
    assert consume(consumer, context, [UNNAMED]) == {"batchItemFailures": []}
    assert stack.states() == {}
    [letter] = stack.dead_letters()
    assert letter["reason"] == "foreign_account" and "StreamEventsWithoutAccount=refuse" in letter["detail"]
    # Contract 4: what it claimed to be, since it decoded fully
    assert (letter["event_id"], letter["event_type"]) == (UNNAMED["id"], UNNAMED["type"])


def test_a_subaccount_token_owns_the_events_naming_no_account_it_signs(stack, webhook, context, monkeypatch):
    from twilio_sink import aws
    without_deadline(monkeypatch)
    boto3.client("secretsmanager").put_secret_value(SecretId=stack.secret_arn, SecretString=json.dumps(
        {"auth_token": "main-token", "accounts": {SAMPLE_SUBACCOUNT_SID: "sub-token"}}))
    aws.reset_clients()
    response = webhook.lambda_handler(webhook_event(json.dumps([UNNAMED]), token="sub-token"), context)
    assert response["statusCode"] == 200
    note = applied_once(stack, "message#" + UNNAMED["data"]["message_id"], "sent")
    assert note["_attributes"]["account_sid"] == SAMPLE_SUBACCOUNT_SID


def test_a_subaccount_token_of_an_account_not_accepted_owns_nothing(stack, webhook, context, monkeypatch):
    from twilio_sink import aws
    without_deadline(monkeypatch)
    only_account(monkeypatch, SAMPLE_ACCOUNT_SID)
    boto3.client("secretsmanager").put_secret_value(SecretId=stack.secret_arn, SecretString=json.dumps(
        {"auth_token": "main-token", "accounts": {SAMPLE_SUBACCOUNT_SID: "sub-token"}}))
    aws.reset_clients()
    response = webhook.lambda_handler(webhook_event(json.dumps([UNNAMED]), token="sub-token"), context)
    assert response["statusCode"] == 400
    assert stack.states() == {}
    [letter] = stack.dead_letters()
    assert letter["reason"] == "foreign_account" and letter["origin"]["signed_by"] == SAMPLE_SUBACCOUNT_SID


@pytest.mark.parametrize("door", DOORS)
def test_a_source_naming_two_accounts_is_foreign_even_when_the_first_is_ours(stack, deliver, door):
    event = f.message("queued") | {"source": f"/2010-04-01/Accounts/{SAMPLE_ACCOUNT_SID}/Accounts/AC{'9' * 32}/x"}
    deliver(door, [event])
    assert stack.states() == {}
    [letter] = stack.dead_letters()
    assert letter["reason"] == "foreign_account" and "different accounts" in letter["detail"]
    assert (letter["event_id"], letter["event_type"]) == (event["id"], event["type"])


@pytest.mark.parametrize(("source", "origin", "refuse", "owner"), [
    # A webhook letter replays under the account whose token signed its delivery, else the main one
    ("webhook", {"request_id": "r1", "index": 0, "signed_by": SAMPLE_SUBACCOUNT_SID}, "", SAMPLE_SUBACCOUNT_SID),
    ("webhook", {"request_id": "r1", "index": 0}, "", SAMPLE_ACCOUNT_SID),
    # A stream letter as the consumer admits it: two accounts accepted, so none is recorded...
    ("kinesis", {"sequence_number": "1", "shard_id": "shardId-0"}, "", None),
    # ...or refused, when the stack is strict (its StreamEventsWithoutAccount output)
    ("kinesis", {"sequence_number": "1", "shard_id": "shardId-0"}, "refuse", "foreign_account"),
])
def test_replay_admits_an_event_naming_no_account_as_its_door_did(source, origin, refuse, owner):
    from sink_ops import recovery, replay
    from twilio_sink.dead_letters import DeadLetter

    letter = DeadLetter.build(json.dumps(UNNAMED), reason="invalid_payload", detail="fixed since", source=source,
                              received_at="2026-01-01T00:00:00.000000Z", origin=origin)
    resources = recovery.Resources("table", "topic", "queue", "failures", f"{SAMPLE_ACCOUNT_SID},{SAMPLE_SUBACCOUNT_SID}",
                                   stream_events_without_account=refuse)
    [item] = replay.rebuild(letter, resources)
    if owner == "foreign_account":
        assert item.poison is not None and item.poison.reason == "foreign_account"
    else:
        assert item.poison is None and item.account == owner


# ---- 1. the type routes; dataschema informs -----------------------------------------------------------

@pytest.mark.parametrize(("dataschema", "unlisted"), [
    # The A2P event guide's name for brand-unverified: listed as an alias, not counted
    ("https://events-schemas.twilio.com/A2P.BrandRegistrationUnverified/1", None),
    ("https://events-schemas.stage.twilio.com/A2P.BrandRegisteredUnverified/1", None),
    ("https://events-schemas.dev.twilio.com/A2P.BrandRegisteredUnverified/2.json", None),
    # Another name, a version no document shows, a URL that is no schema path: applied, and counted
    ("https://events-schemas.twilio.com/A2P.BrandRegistered/1", "A2P.BrandRegistered/1"),
    ("https://events-schemas.twilio.com/A2P.BrandRegisteredUnverified/9", "A2P.BrandRegisteredUnverified/9"),
    ("urn:twilio:schema", "(unreadable)"),
])
@pytest.mark.parametrize("door", DOORS)
def test_no_dataschema_name_version_or_host_refuses_a_known_type(stack, deliver, door, dataschema, unlisted,
                                                                 capsys):
    event = f.brand("brand-unverified", brandsid="BN1") | {"dataschema": dataschema}
    capsys.readouterr()
    assert deliver(door, [event]) == 200
    applied_once(stack, "brand#BN1", "unverified")
    counted = [(m["event_type"], m["schema"]) for m in emitted(capsys) if "SchemasUnlisted" in m]
    assert counted == ([(BRAND_TYPES + "brand-unverified", unlisted)] if unlisted else [])


# ---- 3. minimal required fields, per family -----------------------------------------------------------

def minimal(family) -> dict:
    """Only what places the event: the required placing fields, or (calls: one of two) the first of them."""
    placing = family.data_model.placing()
    required = [key for key, (_, needed) in placing.items() if needed] or list(placing)[:1]
    return {key: f"X{index}{family.entity}" for index, key in enumerate(required)}


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("family", FAMILIES, ids=lambda family: family.name)
def test_a_payload_holding_only_what_places_the_event_is_applied(stack, deliver, door, family):
    event_type = next(iter(family.types))
    event = f.cloudevent(event_type, minimal(family))
    assert deliver(door, [event]) == 200
    assert stack.dead_letters() == []
    [state] = stack.states().values()
    assert state["event_type"] == event_type and state["id"] == next(iter(minimal(family).values()))
    assert len(stack.notifications()) == 1


@pytest.mark.parametrize("family", [family for family in FAMILIES
                                    if any(needed for _, needed in family.data_model.placing().values())],
                         ids=lambda family: family.name)
def test_a_payload_lacking_its_id_is_invalid_and_the_letter_names_the_field(stack, deliver, family):
    event = f.cloudevent(next(iter(family.types)), {"unrelated": 1})
    deliver("kinesis", [event])
    [letter] = stack.dead_letters()
    [required] = [key for key, (_, needed) in family.data_model.placing().items() if needed]
    assert letter["reason"] == "invalid_payload" and f"{required}: Field required" in letter["detail"]


@pytest.mark.parametrize(("event", "pk"), [
    # Fields the model reads but that do not place the event: unreadable, they count as absent
    (f.brand("brand-registered", brandsid="BN2") | {"data": {"brandsid": "BN2", "updateddate": "yesterday",
                                                              "timestamp": {"ms": 1}}}, "brand#BN2"),
    (f.message("sent", message_id="MM2", operation_id={"not": "text"}), "message#MM2"),
    (f.cloudevent("com.twilio.voice.status-callback.call.ringing",
                  {"request": {"method": 5, "parameters": {"CallSid": "CA2", "CallStatus": ["x"]}}}), "call#CA2"),
])
def test_an_unreadable_field_that_does_not_place_the_event_refuses_nothing(stack, deliver, event, pk):
    deliver("kinesis", [event])
    assert stack.dead_letters() == [] and pk in stack.states()


def test_an_unreadable_field_that_places_the_event_is_still_refused(stack, deliver):
    deliver("kinesis", [f.message("sent", attempt="first")])
    [letter] = stack.dead_letters()
    assert letter["reason"] == "invalid_payload" and letter["detail"].startswith(
        "com.twilio.comms-api.message.sent: attempt:")
