"""The families beyond the seeds, schema versions, time fallback and account SIDs, routed one event at a time."""

from datetime import UTC, datetime

import pytest

from sink_dev.samples import load_samples
from tests.support import factories as f
from tests.support.expectations import emitted
from twilio_sink.envelope import CloudEvent
from twilio_sink.poison import Poison
from twilio_sink.registry import FAMILIES, accounts_named, dataschema, route
from twilio_sink.sids import NOT_AN_ACCOUNT_SID
from twilio_sink.times import parse_timestamp

PM = "com.twilio.messaging.message."
CALL = "com.twilio.voice.status-callback.call."
OLD_CALL = "com.twilio.voice.webhook.status-callback.call."
ACCOUNT = "AC" + "a" * 32
SUBACCOUNT = "AC" + "b" * 32
SAMPLES = load_samples()


def routed(event: dict):
    return route(CloudEvent.model_validate(event))


def pm(status: str, message_status: str | None = None, seconds: float = 0, **data) -> dict:
    payload = {"messageSid": "SM1", "messageStatus": (message_status or status).upper(),
               "timestamp": f.at(seconds), **data}
    return f.cloudevent(PM + status, payload, seconds)


def call(suffix: str, call_status: str | None, seconds: float = 0, prefix: str = CALL, **parameters) -> dict:
    params = {"CallSid": "CA1", **parameters}
    if call_status is not None:
        params["CallStatus"] = call_status
    return f.cloudevent(prefix + suffix, {"sid": "CA1", "timestamp": f.at(seconds),
                                          "request": {"method": "POST", "parameters": params}}, seconds)


# ---- Programmable Messaging ------------------------------------------------------------------------

@pytest.mark.parametrize("status", ["queued", "sent", "delivered", "undelivered", "failed", "read"])
def test_programmable_messaging_status_is_the_lowercase_word_on_the_message_entity(status):
    change = routed(pm(status))
    assert (change.entity, change.entity_id, change.status) == ("message", "SM1", status)


def test_when_the_type_and_message_status_disagree_the_type_wins():
    # Twilio's docs show a `delivered` type carrying `QUEUED`: subscribers filter on the type
    change = routed(pm("delivered", message_status="QUEUED"))
    assert change.status == "delivered"
    assert change.event.data["messageStatus"] == "QUEUED"  # kept as it came


def test_programmable_messaging_and_communications_api_order_keys_compare_consistently():
    # Both families write message#<sid>; Programmable Messaging has no attempt (contract 2: missing = 0)
    comms_sent = routed(f.message("sent", message_id="SM1", attempt=None, seconds=1))
    pm_delivered = routed(pm("delivered", seconds=2))
    pm_queued = routed(pm("queued", seconds=0))
    assert comms_sent.pk == pm_delivered.pk == "message#SM1"
    assert pm_queued.order_key < comms_sent.order_key < pm_delivered.order_key
    # a later attempt of the Communications API restarts the lifecycle, as contract 2 says
    assert routed(f.message("queued", message_id="SM1", attempt="1")).order_key > pm_delivered.order_key


def test_error_code_may_be_a_number_or_text():
    assert routed(pm("failed", errorCode=30007)).status == "failed"
    assert routed(pm("failed", errorCode="30007")).status == "failed"


def test_inbound_programmable_message_is_received():
    event = f.cloudevent("com.twilio.messaging.inbound-message.received",
                         {"messageSid": "SM9", "timestamp": f.at(0), "body": "hi"})
    change = routed(event)
    assert (change.entity, change.entity_id, change.status) == ("message", "SM9", "received")


# ---- voice calls ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("suffix", "call_status", "expected"), [
    ("initiated", "initiated", "initiated"), ("ringing", "ringing", "ringing"),
    ("answered", "in-progress", "in-progress"), ("completed", "busy", "busy"),
    ("completed", "no-answer", "no-answer"), ("completed", None, "completed"),  # no CallStatus: the type's word
    ("answered", None, "in-progress"), ("completed", "SOMETHING-NEW", "completed"),
])
def test_call_status_is_the_callbacks_call_status(suffix, call_status, expected):
    for prefix in (CALL, OLD_CALL):  # the deprecated types are the same family
        change = routed(call(suffix, call_status, prefix=prefix))
        assert (change.entity, change.entity_id, change.status) == ("call", "CA1", expected)


def test_call_progress_outranks_time():
    completed = routed(call("completed", "completed", seconds=1))
    late_ringing = routed(call("ringing", "ringing", seconds=5))
    assert late_ringing.order_key < completed.order_key


def test_call_sid_from_the_payload_when_the_parameters_lack_it():
    event = f.cloudevent(CALL + "ringing", {"sid": "CA7", "timestamp": f.at(0)})
    assert routed(event).entity_id == "CA7"
    with pytest.raises(Poison) as caught:
        routed(f.cloudevent(CALL + "ringing", {"timestamp": f.at(0)}))
    assert caught.value.reason == "invalid_payload" and "sid" in caught.value.detail


# ---- the other families --------------------------------------------------------------------------

@pytest.mark.parametrize(("event_type", "data", "entity", "entity_id", "status"), [
    ("com.twilio.voice.insights.call-summary.partial", {"call_sid": "CA1"}, "call_summary", "CA1", "partial"),
    ("com.twilio.studio.flow.execution.started", {"execution_sid": "FN1"}, "flow_execution", "FN1", "active"),
    ("com.twilio.accountsecurity.verify.verification.max_attempts_reached", {"verification_sid": "VE1"},
     "verification", "VE1", "max_attempts_reached"),
    ("com.twilio.accountsecurity.verify.message.undelivered", {"attempt_sid": "VL1"}, "verify_message", "VL1",
     "undelivered"),
    ("com.twilio.messaging.compliance.toll-free-verification.edit", {"tollfreeverificationsid": "HH1"},
     "tollfree_verification", "HH1", "edited"),
    ("com.twilio.messaging.compliance.brand-registration.brand-secondary-vetting-failure", {"brandsid": "BN1"},
     "brand", "BN1", "secondary_vetting_failed"),
    ("com.twilio.messaging.compliance.campaign-registration.suspended-campaign-delete-submitted",
     {"campaignsid": "CM1"}, "campaign", "CM1", "deletion_submitted"),
])
def test_each_family_routes_to_its_entity_and_status(event_type, data, entity, entity_id, status):
    change = routed(f.cloudevent(event_type, data))
    assert (change.entity, change.entity_id, change.status) == (entity, entity_id, status)


@pytest.mark.parametrize(("earlier", "later"), [
    ("com.twilio.voice.insights.call-summary.partial", "com.twilio.voice.insights.call-summary.complete"),
    ("com.twilio.studio.flow.execution.started", "com.twilio.studio.flow.execution.ended"),
    ("com.twilio.accountsecurity.verify.verification.pending", "com.twilio.accountsecurity.verify.verification.approved"),
    ("com.twilio.accountsecurity.verify.message.sent", "com.twilio.accountsecurity.verify.message.delivered"),
])
def test_a_later_stage_wins_even_when_its_event_is_older(earlier, later):
    data = {"call_sid": "X", "execution_sid": "X", "verification_sid": "X", "attempt_sid": "X"}
    assert routed(f.cloudevent(earlier, data, seconds=9)).order_key < routed(f.cloudevent(later, data)).order_key


def test_toll_free_verification_latest_wins_back_and_forth():
    rejected = routed(f.cloudevent("com.twilio.messaging.compliance.toll-free-verification.rejected",
                                   {"tollfreeverificationsid": "HH1"}, seconds=2))
    approved = routed(f.cloudevent("com.twilio.messaging.compliance.toll-free-verification.request-approved",
                                   {"tollfreeverificationsid": "HH1"}, seconds=1))
    assert approved.order_key < rejected.order_key


# ---- schema versions -----------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "https://events-schemas.twilio.com/Messaging.MessageStatus/7",
    "https://events-schemas.dev.twilio.com/Messaging.MessageStatus/3",
    "https://events-schemas.stage.twilio.com/Messaging.MessageStatus/8.json",
])
def test_every_declared_version_on_any_host_is_accepted_and_not_counted(url, capsys):
    capsys.readouterr()
    assert routed(pm("sent") | {"dataschema": url}).status == "sent"
    assert [m for m in emitted(capsys) if "SchemasUnlisted" in m] == []


def test_a_newer_version_with_the_required_fields_is_accepted_and_counted(capsys):
    capsys.readouterr()
    event = pm("sent") | {"dataschema": "https://events-schemas.twilio.com/Messaging.MessageStatus/42"}
    assert routed(event).status == "sent"
    [metric] = [m for m in emitted(capsys) if "SchemasUnlisted" in m]
    assert (metric["event_type"], metric["schema"], metric["SchemasUnlisted"]) == (
        PM + "sent", "Messaging.MessageStatus/42", [1.0])


def test_a_newer_version_without_the_required_fields_is_invalid_payload():
    event = f.cloudevent(PM + "sent", {"messageStatus": "SENT"}) | {
        "dataschema": "https://events-schemas.twilio.com/Messaging.MessageStatus/42"}
    with pytest.raises(Poison) as caught:
        routed(event)
    assert caught.value.reason == "invalid_payload" and "messageSid" in caught.value.detail


@pytest.mark.parametrize(("url", "counted"), [
    ("https://events-schemas.twilio.com/CommsApi.MessageSent/4", "CommsApi.MessageSent/4"),
    ("https://events-schemas.twilio.com/Messaging.MessageStatusX/7", "Messaging.MessageStatusX/7"),
    ("not a url", "(unreadable)"), ("https://events-schemas.twilio.com/Messaging.MessageStatus", "(unreadable)"),
    ("https://events-schemas.twilio.com/Messaging.Message Status/7", "(unreadable)"),
])
def test_a_known_type_whose_dataschema_names_another_schema_is_applied_and_counted(url, counted, capsys):
    # The type routes: a schema name only guessed from documents is information, never a refusal
    capsys.readouterr()
    assert routed(pm("sent") | {"dataschema": url}).status == "sent"
    [metric] = [m for m in emitted(capsys) if "SchemasUnlisted" in m]
    assert (metric["event_type"], metric["schema"]) == (PM + "sent", counted)


def test_no_dataschema_is_accepted():
    event = pm("sent")
    del event["dataschema"]
    assert routed(event).status == "sent"


def test_a_namespace_checks_the_schemas_prefix_only(capsys):
    tollfree = f.cloudevent("com.twilio.messaging.compliance.toll-free-verification.edit",
                            {"tollfreeverificationsid": "HH1"})
    capsys.readouterr()
    assert routed(tollfree | {"dataschema": "https://events-schemas.twilio.com/TollFree.VerificationEdit/2"})
    assert [m for m in emitted(capsys) if "SchemasUnlisted" in m] == []
    assert routed(tollfree | {"dataschema": "https://events-schemas.twilio.com/A2P.VerificationEdit/2"})
    assert [m["schema"] for m in emitted(capsys) if "SchemasUnlisted" in m] == ["A2P.VerificationEdit/2"]


def test_every_family_names_its_schemas_and_versions():
    for family in FAMILIES:
        for event_type, declared in family.types.items():
            assert declared.schema and declared.versions, event_type
            url = dataschema(event_type)
            assert url is None or url.endswith(f"/{declared.schema}/{declared.latest}")


# ---- time ----------------------------------------------------------------------------------------

def without_time(event: dict) -> dict:
    return {k: v for k, v in event.items() if k != "time"}


@pytest.mark.parametrize(("event", "expected"), [
    (without_time(pm("sent") | {"data": {"messageSid": "SM1", "timestamp": "2025-06-16T17:00:57.563495225Z"}}),
     "2025-06-16T17:00:57.563495Z"),
    (without_time(f.cloudevent("com.twilio.messaging.compliance.brand-registration.brand-registered",
                               {"brandsid": "BN1", "timestamp": 1750093257563})), "2025-06-16T17:00:57.563000Z"),
    (without_time(call("ringing", "ringing") | {"data": {"sid": "CA1", "requestDateCreated":
                                                         "Mon, 16 Jun 2025 17:00:57 +0000"}}),
     "2025-06-16T17:00:57.000000Z"),
    (without_time(f.cloudevent("com.twilio.studio.flow.execution.ended",
                               {"execution_sid": "FN1", "date_updated": "2025-06-16T17:00:57Z"})),
     "2025-06-16T17:00:57.000000Z"),
    (without_time(f.cloudevent("com.twilio.conversations.message.added",
                               {"DateCreated": "2025-06-16T17:00:57.000Z"})), "2025-06-16T17:00:57.000000Z"),
])
def test_without_time_the_familys_own_timestamp_is_the_event_time(event, expected):
    assert routed(event).event.time_utc == expected


def test_without_time_and_without_a_payload_timestamp_is_invalid_payload():
    with pytest.raises(Poison) as caught:
        routed(without_time(f.message("queued")))
    assert caught.value.reason == "invalid_payload" and caught.value.detail.startswith("time:")


def test_nanosecond_time_is_accepted():
    change = routed(pm("sent") | {"time": "2025-06-16T17:00:57.563495225Z"})
    assert change.event.time_utc == "2025-06-16T17:00:57.563495Z"


@pytest.mark.parametrize("value", [None, True, 1.5, "", "yesterday", [], {}, -1, 10**20, "Mon, 99 Foo 2025"])
def test_unreadable_payload_timestamps_are_none(value):
    assert parse_timestamp(value) is None


def test_a_time_without_a_utc_equivalent_is_not_a_cloudevent():
    with pytest.raises(ValueError):
        CloudEvent.model_validate(f.message("queued") | {"time": "0001-01-01T00:00:00+01:00"})
    assert parse_timestamp("0001-01-01T00:00:00+01:00") is None
    assert parse_timestamp("2025-06-16T19:00:57+02:00") == datetime(2025, 6, 16, 17, 0, 57, tzinfo=UTC)


# ---- accounts ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("event", "expected"), [
    (f.message("queued", account_sid=ACCOUNT), ACCOUNT),
    (pm("sent", accountSid=ACCOUNT), ACCOUNT),
    (f.cloudevent("com.twilio.messaging.compliance.brand-registration.brand-registered",
                  {"brandsid": "BN1", "accountsid": ACCOUNT}), ACCOUNT),
    (call("ringing", "ringing", AccountSid=SUBACCOUNT), SUBACCOUNT),
    (f.message("sent") | {"source": f"/2010-04-01/Accounts/{SUBACCOUNT}/Messages/MM1.json"}, SUBACCOUNT),
    (f.cloudevent("com.twilio.eventstreams.test-event", {"test_id": "t"}, event_id=ACCOUNT) | {"source": "Sink"},
     ACCOUNT),
    (f.message("sent", account_sid="AC-not-a-sid") | {"source": "/tests"}, None),
])
def test_the_account_sid_is_recorded_as_an_index_attribute(event, expected):
    change = routed(event)
    assert change.indexed.get("account_sid") == expected




@pytest.mark.parametrize(("event", "expected"), [
    (f.message("sent", account_sid=ACCOUNT) | {"source": "/tests"}, [ACCOUNT]),
    (call("ringing", "ringing", AccountSid=SUBACCOUNT) | {"source": "/tests"}, [SUBACCOUNT]),
    # Refused by its model, still read field by field, in the family's order, then the source.
    (f.message("sent", message_id="", accountsid=ACCOUNT), [ACCOUNT, f.SAMPLE_ACCOUNT_SID]),
    (f.message("sent", message_id="", account_sid=[1]) | {"source": f"/Accounts/{SUBACCOUNT}/x"},
     [NOT_AN_ACCOUNT_SID, SUBACCOUNT]),
    (f.cloudevent("com.twilio.conversations.message.added", {"AccountSid": "x", "accountSid": ACCOUNT})
     | {"source": "/tests"}, [ACCOUNT, NOT_AN_ACCOUNT_SID]),
    (call("ringing", "ringing", AccountSid=ACCOUNT) | {"data": {"request": "not an object"}, "source": "/t"}, []),
    (f.message("sent") | {"source": "/tests"}, []),
])
def test_accounts_named_reads_an_event_before_routing_and_never_raises(event, expected):
    assert accounts_named(CloudEvent.model_validate(event)) == expected


@pytest.mark.parametrize("event", [*SAMPLES, call("ringing", "ringing", AccountSid=SUBACCOUNT) | {"source": "/t"},
                                   f.message("sent", account_sid=SUBACCOUNT) | {"source": "/t"}],
                         ids=lambda e: e["type"].rsplit(".", 1)[-1] + ":" + e["id"][-4:])
def test_the_allow_list_and_the_state_item_read_the_same_account(event):
    # The allow-list accepts an event naming exactly one account; the state records that one.
    cloudevent = CloudEvent.model_validate(event)
    assert set(accounts_named(cloudevent)) == {routed(event).indexed["account_sid"]}


# ---- the catch-all -------------------------------------------------------------------------------

def test_an_unmodelled_type_is_counted_by_type(capsys):
    capsys.readouterr()
    routed(f.cloudevent("com.twilio.conversations.message.added", {"x": 1}))
    routed(f.cloudevent("weird type with spaces", {"x": 1}))
    counted = [m["event_type"] for m in emitted(capsys) if "EventsUnmodelled" in m]
    assert counted == ["com.twilio.conversations.message.added", "(malformed)"]
