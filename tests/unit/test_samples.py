"""The sample payloads, the hand-written oracle, and the Lambda events generated from them."""

import base64
import json
import re
from datetime import datetime
from urllib.parse import parse_qs

import pytest
from twilio.request_validator import RequestValidator

from sink_dev import events as gen
from sink_dev import samples
from sink_dev.paths import ROOT
from sink_dev.samples import LOCAL_TEST_AUTH_TOKEN, load_samples
from twilio_sink.registry import FAMILIES, UNMODELLED, family_of

SAMPLES = load_samples()
NAMES = samples.sample_names(SAMPLES)
EXPECTED = json.loads((gen.EVENTS / "samples" / "expected.json").read_text())
TEST_EVENT = "com.twilio.eventstreams.test-event"

COMMS = "com.twilio.comms-api."
A2P = "com.twilio.messaging.compliance."
A2P_REGISTRATIONS = tuple(A2P + kind for kind in ("brand-", "campaign-", "number-"))
SEED_TYPES = {
    *(COMMS + "message." + s for s in ("queued", "sent", "delivered", "undelivered", "failed", "read",
                                       "inbound-received")),
    *(COMMS + "operation." + s for s in ("scheduled", "processing", "completed")),
    *(A2P + "brand-registration.brand-" + s for s in ("unverified", "registered", "failure")),
    *(A2P + "campaign-registration.campaign-" + s for s in ("submitted", "approved", "failure")),
    *(A2P + kind + "." + s for kind in ("number-registration", "number-deregistration")
      for s in ("pending", "successful", "failed")),
    TEST_EVENT,
}


def words_by_entity() -> dict[str, set[str]]:
    """Each entity's status words, from the families that write it (they are the one source)."""
    words: dict[str, set[str]] = {}
    for family in (*FAMILIES, UNMODELLED):
        words.setdefault(family.entity, set()).update(family.status_words)
    return words


def contract_2() -> dict[str, tuple[set[str], set[str]]]:
    """Contract 2's table of entities, read from docs/contracts.md: entity → (id fields, status words)."""
    text = (ROOT / "docs" / "contracts.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| [^|]+ \| ([^|]+) \| ([^|]+) \|$", text, flags=re.MULTILINE)
    table: dict[str, tuple[set[str], set[str]]] = {}
    for entity, id_from, statuses in rows:
        fields, words = table.setdefault(entity, (set(), set()))
        fields.update(re.findall(r"`([\w.]+)`", id_from))
        words.update(re.findall(r"`([\w-]+)`", re.sub(r"\(.*?\)", "", statuses)))  # a note in brackets is no word
    return table


WORDS = words_by_entity()
CONTRACT_2 = contract_2()
EVENT_ID = re.compile(r"EZ[0-9a-f]{32}")
ACCOUNT_SID = re.compile(r"AC[0-9a-f]{32}")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIME_MS_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
DATASCHEMA = re.compile(r"https://events-schemas\.twilio\.com/[A-Za-z0-9]+\.[A-Za-z0-9]+/\d+(\.json)?")


def sample_key(sample: dict) -> str:
    return sample["data"]["test_id"] if sample["type"] == TEST_EVENT else sample["id"]


def load(path) -> dict:
    return json.loads(path.read_text())


def signed_url(event: dict) -> str:
    return f"https://{event['requestContext']['domainName']}{event['rawPath']}?{event['rawQueryString']}"


def kinesis_payloads(event: dict) -> list[dict]:
    return [json.loads(base64.b64decode(record["kinesis"]["data"])) for record in event["Records"]]


# ------------------------------------------------------------------------------------ generated files

def test_generated_files_are_up_to_date():
    # Given the samples, When events/ is compared with what they generate, Then nothing differs
    assert gen.check() == [], "run `python -m sink_dev.events` (make events)"
    assert gen.main(["--check"]) == 0


def test_check_reports_drift_without_writing():
    # Given a sample set with one event fewer, When checked, Then the now-stale files and all.json are reported
    before = {path: path.read_text() for path in gen.generated_files()}
    problems = gen.check(SAMPLES[:-1])
    assert f"stale: events/kinesis/{NAMES[-1]}.json" in problems
    assert f"stale: events/webhook/{NAMES[-1]}.json" in problems
    assert "differs: events/kinesis/all.json" in problems and "differs: events/webhook/all.json" in problems
    assert {path: path.read_text() for path in before} == before


def test_generation_is_deterministic():
    assert gen.generated_files() == gen.generated_files()


def test_every_sample_has_one_file_per_sink_named_after_its_type():
    assert len(set(NAMES)) == len(SAMPLES)
    for name in NAMES:
        assert (gen.KINESIS_DIR / f"{name}.json").is_file()
        assert (gen.WEBHOOK_DIR / f"{name}.json").is_file()
    assert {"message-queued", "message-queued-2", "operation-completed", "brand-registration-brand-failure",
            "campaign-registration-campaign-approved", "number-registration-pending",
            "number-deregistration-failed", "test-event"} <= set(NAMES)


@pytest.mark.parametrize(("event_type", "name"), [
    ("com.twilio.comms-api.message.queued", "message-queued"),
    ("com.twilio.comms-api.message.inbound-received", "message-inbound-received"),
    ("com.twilio.comms-api.operation.completed", "operation-completed"),
    ("com.twilio.messaging.compliance.brand-registration.brand-failure", "brand-registration-brand-failure"),
    ("com.twilio.messaging.compliance.number-deregistration.failed", "number-deregistration-failed"),
    ("com.twilio.eventstreams.test-event", "test-event"),
])
def test_event_name(event_type, name):
    assert samples.event_name(event_type) == name


# ------------------------------------------------------------------------------------ the samples

def test_every_seed_type_and_every_family_is_covered():
    assert SEED_TYPES - {s["type"] for s in SAMPLES} == set()
    assert {type(family_of(s["type"])) for s in SAMPLES} == {type(f) for f in (*FAMILIES, UNMODELLED)}


def test_contract_2s_entities_keep_their_id_and_words():
    # Contract 2 is extended, never broken: a family may add words, never drop the contract's.
    assert set(CONTRACT_2) >= {"message", "operation", "brand", "campaign", "phone_number", "sink_test", "call", "event"}
    for entity, (fields, words) in CONTRACT_2.items():
        assert words <= WORDS[entity], entity
        sources = " ".join(f.id_source for f in (*FAMILIES, UNMODELLED) if f.entity == entity)
        assert fields and all(f"{field}" in sources for field in fields), entity


def test_event_ids_are_unique_twilio_sids_except_the_test_events():
    ids = [s["id"] for s in SAMPLES if s["type"] != TEST_EVENT]
    assert len(ids) == len(set(ids))
    assert all(EVENT_ID.fullmatch(i) for i in ids)
    tests = [s for s in SAMPLES if s["type"] == TEST_EVENT]
    assert tests
    for test in tests:
        # Twilio's test event: id is the Account SID (not unique), source `Sink`, data.test_id a UUID
        assert ACCOUNT_SID.fullmatch(test["id"]) and test["source"] == "Sink"
        assert UUID.fullmatch(test["data"]["test_id"])


@pytest.mark.parametrize("sample", SAMPLES, ids=NAMES)
def test_each_sample_is_a_well_formed_twilio_cloudevent(sample):
    assert sample["specversion"] == "1.0"
    assert sample["datacontenttype"] == "application/json"
    assert DATASCHEMA.fullmatch(sample["dataschema"])
    assert TIME_MS_UTC.fullmatch(sample["time"])
    assert isinstance(sample["data"], dict) and sample["data"]
    if sample["type"].startswith(A2P_REGISTRATIONS):
        assert sample["dataschema"].startswith("https://events-schemas.twilio.com/A2P.")
        assert sample["dataschema"].endswith("/1")  # the version a subscription without one gets
        assert re.fullmatch(r"CA[0-9a-f]{32}", sample["source"])
        for field in ("createddate", "updateddate", "timestamp"):
            assert isinstance(sample["data"].get(field, 0), int)
    if sample["type"].startswith(COMMS + "message.") and "attempt" in sample["data"]:
        assert sample["data"]["attempt"] == "1"


def test_times_increase_along_each_entity_lifecycle():
    last: dict[tuple, datetime] = {}
    for sample in SAMPLES:
        expected = EXPECTED["per_event"][sample_key(sample)]
        entity = (expected["entity"], expected["id"])
        time = datetime.fromisoformat(sample["time"])
        assert entity not in last or time > last[entity], sample["id"]
        last[entity] = time


# ------------------------------------------------------------------------------------ the oracle

def test_expected_has_an_entry_for_every_sample_and_nothing_else():
    assert set(EXPECTED["per_event"]) == {sample_key(s) for s in SAMPLES}


@pytest.mark.parametrize("sample", SAMPLES, ids=NAMES)
def test_expected_entry_names_the_entity_of_its_sample(sample):
    expected = EXPECTED["per_event"][sample_key(sample)]
    family = family_of(sample["type"])
    assert expected["entity"] == family.entity
    # The paths the family reads its id from (a call's callback parameters, else its sid); none: the event id.
    paths = re.findall(r"\bdata\.([\w.]+)", family.id_source)
    found = []
    for path in paths:
        value = sample["data"]
        for name in path.split("."):
            value = value.get(name) if isinstance(value, dict) else None
        found.append(value)
    assert expected["id"] in (found if paths else [sample["id"]])
    assert expected["status"] in family.status_words


def test_expected_final_has_one_state_per_entity():
    final = [(e["entity"], e["id"]) for e in EXPECTED["final"]]
    assert len(final) == len(set(final))
    assert set(final) == {(e["entity"], e["id"]) for e in EXPECTED["per_event"].values()}
    for state in EXPECTED["final"]:
        assert state["status"] in WORDS[state["entity"]]


# ------------------------------------------------------------------------------------ webhook events

WEBHOOK_FILES = sorted(gen.WEBHOOK_DIR.glob("*.json"))


@pytest.mark.parametrize("path", WEBHOOK_FILES, ids=lambda p: p.stem)
def test_webhook_event_signature_verifies_and_fails_when_tampered(path):
    event = load(path)
    url, body, signature = signed_url(event), event["body"], event["headers"]["x-twilio-signature"]
    assert RequestValidator(LOCAL_TEST_AUTH_TOKEN).validate(url, body, signature)
    assert not RequestValidator("not-the-token").validate(url, body, signature)
    tampered = body.replace('"time":"2025', '"time":"2026', 1)
    assert tampered != body
    assert not RequestValidator(LOCAL_TEST_AUTH_TOKEN).validate(url, tampered, signature)


@pytest.mark.parametrize("path", WEBHOOK_FILES, ids=lambda p: p.stem)
def test_webhook_event_is_an_http_api_v2_post(path):
    event = load(path)
    assert event["version"] == "2.0" and event["routeKey"] == "POST /events" and event["rawPath"] == "/events"
    assert event["isBase64Encoded"] is False
    assert event["headers"]["content-type"] == "application/json"
    assert all(name == name.lower() for name in event["headers"])
    context = event["requestContext"]
    assert context["http"]["method"] == "POST" and context["stage"] == "$default"
    assert event["headers"]["host"] == context["domainName"] == samples.DOMAIN
    assert parse_qs(event["rawQueryString"]) == {"bodySHA256": [samples.body_sha256(event["body"])]}
    assert event["queryStringParameters"] == {"bodySHA256": samples.body_sha256(event["body"])}


@pytest.mark.parametrize(("name", "sample"), list(zip(NAMES, SAMPLES)), ids=NAMES)
def test_webhook_body_is_a_compact_array_holding_the_sample(name, sample):
    body = load(gen.WEBHOOK_DIR / f"{name}.json")["body"]
    assert json.loads(body) == [sample]
    assert body == json.dumps([sample], separators=(",", ":"))


def test_webhook_all_holds_every_sample_in_order():
    assert json.loads(load(gen.WEBHOOK_DIR / "all.json")["body"]) == SAMPLES


def test_webhook_event_appends_the_body_hash_to_an_existing_query_and_signs_it():
    event = samples.webhook_event('[{"a":1}]', token="another-token", extra_query="sink=primary")
    assert event["rawQueryString"].startswith("sink=primary&bodySHA256=")
    assert event["queryStringParameters"]["sink"] == "primary"
    assert RequestValidator("another-token").validate(signed_url(event), event["body"],
                                                      event["headers"]["x-twilio-signature"])


def test_webhook_event_passes_non_utf8_bytes_base64_encoded():
    event = samples.webhook_event(b"\xff\xfe")
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"\xff\xfe"
    assert event["rawQueryString"] == f"bodySHA256={samples.body_sha256(b'\xff\xfe')}"


def test_sign_matches_twilio_request_validator():
    url = "https://example.com/events?bodySHA256=abc"
    assert samples.sign(url, "token") == RequestValidator("token").compute_signature(url, {})


# ------------------------------------------------------------------------------------ Kinesis events

@pytest.mark.parametrize(("name", "sample"), list(zip(NAMES, SAMPLES)), ids=NAMES)
def test_kinesis_record_decodes_to_the_sample_with_data_as_a_json_string(name, sample):
    event = load(gen.KINESIS_DIR / f"{name}.json")
    [record] = event["Records"]
    [payload] = kinesis_payloads(event)
    assert isinstance(payload["data"], str)
    assert json.loads(payload["data"]) == sample["data"]
    assert {k: v for k, v in payload.items() if k != "data"} == {k: v for k, v in sample.items() if k != "data"}
    assert record["eventSource"] == "aws:kinesis" and record["awsRegion"] == "us-east-1"
    assert record["eventSourceARN"] == "arn:aws:kinesis:us-east-1:123456789012:stream/twilio-event-sink"
    assert record["eventID"] == f"shardId-000000000000:{record['kinesis']['sequenceNumber']}"


def test_kinesis_sequence_numbers_are_long_decimals_increasing_across_the_files():
    sequences = [int(load(gen.KINESIS_DIR / f"{name}.json")["Records"][0]["kinesis"]["sequenceNumber"])
                 for name in NAMES]
    assert all(len(str(s)) >= 50 for s in sequences)
    assert sequences == sorted(set(sequences))


def test_kinesis_all_holds_every_sample_in_order():
    event = load(gen.KINESIS_DIR / "all.json")
    payloads = kinesis_payloads(event)
    assert [p["id"] for p in payloads] == [s["id"] for s in SAMPLES]
    assert [json.loads(p["data"]) for p in payloads] == [s["data"] for s in SAMPLES]
    sequences = [int(r["kinesis"]["sequenceNumber"]) for r in event["Records"]]
    assert sequences == sorted(set(sequences))


def test_kinesis_record_can_keep_data_as_an_object():
    record = samples.kinesis_record(SAMPLES[0], 7, data_as_string=False)
    assert json.loads(base64.b64decode(record["kinesis"]["data"])) == SAMPLES[0]
    assert record["kinesis"]["sequenceNumber"] == "7"


def test_kinesis_event_numbers_records_from_first_sequence():
    event = samples.kinesis_event(SAMPLES[:3], first_sequence=100)
    assert [r["kinesis"]["sequenceNumber"] for r in event["Records"]] == ["100", "101", "102"]
