"""`twilio-sink backfill` against the stand-in of Twilio's REST API and the moto stack."""

import json
from datetime import timedelta

import pytest

from sink_cli.main import main as cli
from sink_local.twilio_api import ACCOUNT, API_KEY_SECRET, API_KEY_SID
from tests.reconcile.histories import call_event, call_sid, message_sid, pm_event
from tests.support import factories
from tests.support.expectations import assert_expires_after_retention
from tests.support.sinks import consume

SINCE = factories.BASE_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")
UNTIL = (factories.BASE_TIME + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def outage(stack, consumer, context, twilio_api, monkeypatch):
    """Five messages sent in the window (three the sink heard of, stuck; one complete; one never heard
    of), one sent after it; three calls started in the window (one stuck, one complete, one never heard
    of), one after it; the API keys secret filled and the `twilio` client sent to the fake."""
    secret = stack.physical["TwilioApiKeysSecret"]["Ref"]
    stack.client("secretsmanager").put_secret_value(SecretId=secret, SecretString=json.dumps(
        {ACCOUNT: {"api_key_sid": API_KEY_SID, "api_key_secret": API_KEY_SECRET}}))
    at = factories.BASE_TIME
    arrived = [factories.message("queued", message_sid(1), 10, account_sid=ACCOUNT),
               factories.message("sent", message_sid(2), 20, account_sid=ACCOUNT),
               factories.message("sent", message_sid(3), 30, account_sid=ACCOUNT),
               factories.message("delivered", message_sid(4), 40, account_sid=ACCOUNT),
               call_event("ringing", call_sid(1), "ringing", 50),
               call_event("completed", call_sid(2), "no-answer", 60)]
    consume(consumer, context, arrived)
    stack.notifications()
    for n, status in ((1, "delivered"), (2, "undelivered"), (3, "sent"), (4, "delivered"), (5, "failed")):
        twilio_api.message(message_sid(n), status, at + timedelta(seconds=n * 10 + 5), sent=at + timedelta(seconds=n * 10))
    twilio_api.message(message_sid(6), "delivered", at + timedelta(hours=2), sent=at + timedelta(hours=2))
    for n, status in ((1, "completed"), (2, "no-answer"), (3, "busy")):
        twilio_api.call(call_sid(n), status, at + timedelta(seconds=100 + n), started=at + timedelta(seconds=40 + n))
    twilio_api.call(call_sid(4), "completed", at + timedelta(hours=2), started=at + timedelta(hours=2))
    return ["backfill", "--table-name", stack.table_name, "--topic-arn", stack.topic_arn,
            "--dead-letter-queue-url", stack.dlq_url, "--api-keys-secret-arn", secret, "--twilio-account-sids", ACCOUNT,
            "--twilio-api-base-url", twilio_api.base_url, "--history-retention-days", stack.env["HISTORY_RETENTION_DAYS"],
            "--since", SINCE, "--until", UNTIL]


def test_dry_run_lists_the_corrections_and_writes_nothing(stack, outage, capsys):
    before = stack.items()

    assert cli(outage + ["--dry-run"]) == 0

    out = capsys.readouterr().out
    assert sorted(line.strip() for line in out.splitlines() if line.startswith("  would change")) == [
        f"would change call#{call_sid(1)}: ringing -> completed",
        f"would change call#{call_sid(3)}: (none) -> busy",
        f"would change message#{message_sid(1)}: queued -> delivered",
        f"would change message#{message_sid(2)}: sent -> undelivered",
        f"would change message#{message_sid(5)}: (none) -> failed",
    ]
    assert "5 message(s) and 3 call(s) listed, 5 would change, 0 failed" in out
    assert stack.items() == before
    assert stack.notifications() == []


def test_backfill_applies_each_correction_once(stack, outage, capsys, twilio_api):
    # The fake pages two messages at a time: the window takes three pages.
    assert cli(outage) == 0

    states = stack.states()
    assert {n: states[f"message#{message_sid(n)}"]["status"] for n in range(1, 6)} == {
        1: "delivered", 2: "undelivered", 3: "sent", 4: "delivered", 5: "failed"}
    assert {n: states[f"call#{call_sid(n)}"]["status"] for n in range(1, 4)} == {
        1: "completed", 2: "no-answer", 3: "busy"}
    assert f"message#{message_sid(6)}" not in states  # sent after the window
    assert f"call#{call_sid(4)}" not in states  # started after it
    notices = stack.notifications()
    assert sorted((n["id"], n["previous_status"], n["status"]) for n in notices) == [
        (call_sid(1), "ringing", "completed"), (call_sid(3), None, "busy"),
        (message_sid(1), "queued", "delivered"), (message_sid(2), "sent", "undelivered"),
        (message_sid(5), None, "failed")]
    # A call the sink never heard of is a call event like Twilio's own: its status in CallStatus.
    assert json.loads(states[f"call#{call_sid(3)}"]["data"])["request"]["parameters"]["CallStatus"] == "busy"
    [corrected] = [item for item in stack.history(f"message#{message_sid(5)}") if item["source"] == "backfill"]
    assert_expires_after_retention(corrected, stack)  # as the functions' history does
    assert twilio_api.fetched("Messages.json") == 3
    assert twilio_api.fetched("Calls.json") == 2
    assert "5 message(s) and 3 call(s) listed, 5 changed, 0 failed" in capsys.readouterr().out

    # Run again: nothing left to change, nothing announced.
    assert cli(outage) == 0
    assert stack.notifications() == []


def test_twilio_failing_exits_1(stack, outage, twilio_api, capsys):
    twilio_api.faults["*"] = [500] * 4
    assert cli(outage) == 1
    assert "the window is incomplete" in capsys.readouterr().err


def test_a_programmable_messaging_message_is_corrected_in_its_own_type(stack, consumer, context, outage, twilio_api):
    # Given a message the sink knows from Programmable Messaging events only, stuck at `sent`
    sid = message_sid(7)
    consume(consumer, context, [pm_event("sent", sid, 70)], first_sequence=10)
    stack.notifications()
    twilio_api.message(sid, "delivered", factories.BASE_TIME + timedelta(seconds=75),
                       sent=factories.BASE_TIME + timedelta(seconds=70))

    assert cli(outage) == 0

    # Then its correction is a Programmable Messaging event, in that family's payload
    state = stack.states()[f"message#{sid}"]
    assert (state["status"], state["event_type"]) == ("delivered", "com.twilio.messaging.message.delivered")
    assert json.loads(state["data"])["messageStatus"] == "DELIVERED"
    assert [(n["status"], n["event_type"]) for n in stack.notifications() if n["id"] == sid] == [
        ("delivered", "com.twilio.messaging.message.delivered")]


def test_twilio_failing_for_the_calls_still_applies_the_messages(stack, outage, twilio_api, capsys):
    twilio_api.faults[f"/api/2010-04-01/Accounts/{ACCOUNT}/Calls.json"] = [503] * 4

    assert cli(outage) == 1

    assert "did not answer for the calls" in capsys.readouterr().err
    states = stack.states()
    assert states[f"message#{message_sid(5)}"]["status"] == "failed"
    assert states[f"call#{call_sid(1)}"]["status"] == "ringing"


def test_a_rate_limited_listing_is_retried(stack, outage, twilio_api, monkeypatch):
    from twilio_sink.reconcile import client

    monkeypatch.setattr(client.time, "sleep", lambda seconds: None)
    twilio_api.faults["*"] = [429, 429]
    assert cli(outage) == 0
    assert stack.states()[f"message#{message_sid(5)}"]["status"] == "failed"


@pytest.mark.parametrize("argv", [
    ["backfill", "--since", "yesterday", "--table-name", "t"],
    ["backfill", "--since", "2026-01-02T00:00:00Z", "--until", "2026-01-01T00:00:00Z", "--table-name", "t"],
    ["backfill", "--since", "2026-01-01T00:00:00Z", "--dry-run", "--table-name", "t"],  # no secret
])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) if "yesterday" in argv else _no_raise() as raised:
        code = cli(argv)
    assert (raised.value.code if raised else code) == 2


class _no_raise:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


DAY = timedelta(days=1)
MIDNIGHT = factories.BASE_TIME.replace(hour=0) + DAY  # 2026-01-02T00:00:00Z


@pytest.mark.parametrize(("since", "until"), [
    (factories.BASE_TIME + timedelta(seconds=30), factories.BASE_TIME + timedelta(seconds=60)),  # within a day
    (MIDNIGHT - timedelta(seconds=10), MIDNIGHT + timedelta(seconds=10)),  # across midnight
    (MIDNIGHT - timedelta(hours=1), MIDNIGHT),  # ending at midnight
], ids=["within-a-day", "across-midnight", "ending-at-midnight"])
def test_a_windows_edges_lose_nothing_and_what_is_outside_is_listed_once(since, until, stack, twilio_api, capsys):
    from urllib.parse import parse_qs, urlsplit

    # Given messages sent and calls started on each edge of the window, one second either side of
    # each, and at noon of each day around it; the sink has heard of none of them
    secret = stack.physical["TwilioApiKeysSecret"]["Ref"]
    stack.client("secretsmanager").put_secret_value(SecretId=secret, SecretString=json.dumps(
        {ACCOUNT: {"api_key_sid": API_KEY_SID, "api_key_secret": API_KEY_SECRET}}))
    second = timedelta(seconds=1)
    noon = since.replace(hour=12, minute=0, second=0, microsecond=0)
    moments = {"before": since - second, "since": since, "last": until - second, "until": until,
               "noon-before": noon - DAY, "noon": noon, "noon-after": noon + DAY}
    for n, moment in enumerate(moments.values()):
        twilio_api.message(message_sid(200 + n), "delivered", moment + second, sent=moment)
        twilio_api.call(call_sid(200 + n), "completed", moment + second, started=moment)
    inside = {n for n, moment in enumerate(moments.values()) if since <= moment < until}
    assert {list(moments)[n] for n in inside} >= {"since", "last"}

    # When backfill runs over the window
    assert cli(["backfill", "--table-name", stack.table_name, "--topic-arn", stack.topic_arn,
                "--dead-letter-queue-url", stack.dlq_url, "--api-keys-secret-arn", secret, "--twilio-account-sids", ACCOUNT,
                "--twilio-api-base-url", twilio_api.base_url, "--history-retention-days", stack.env["HISTORY_RETENTION_DAYS"],
                "--since", since.isoformat(), "--until", until.isoformat()]) == 0

    # Then exactly what was sent or started inside it is there, with one notification each
    states = stack.states()
    assert {n for n in range(len(moments)) if f"message#{message_sid(200 + n)}" in states} == inside
    assert {n for n in range(len(moments)) if f"call#{call_sid(200 + n)}" in states} == inside
    assert len(stack.notifications()) == 2 * len(inside)
    # And Twilio was asked by whole GMT days (its filters' unit), each record listed at most once
    days = {"DateSent>": [since.date().isoformat()], "DateSent<": [(until - second).date().isoformat()],
            "StartTime>": [since.date().isoformat()], "StartTime<": [((until - second).date() + DAY).isoformat()]}
    for path, _ in twilio_api.requests:
        query = parse_qs(urlsplit(path).query)
        assert {name: value for name, value in query.items() if name in days} == {
            name: days[name] for name in days if name.startswith("DateSent" if "Messages" in path else "StartTime")}
    assert max(twilio_api.listed.values()) == 1
    assert f"{len(inside)} message(s) and {len(inside)} call(s) listed" in capsys.readouterr().out


def test_each_account_of_the_secret_is_listed_with_its_own_key(stack, twilio_api, capsys):
    from sink_dev.samples import SAMPLE_SUBACCOUNT_SID

    # Given a message and a call in the window in each of two accounts, and a key per account
    sub_key = ("SK" + "2" * 32, "subaccount-secret")
    twilio_api.api_key(*sub_key, SAMPLE_SUBACCOUNT_SID)
    secret = stack.physical["TwilioApiKeysSecret"]["Ref"]
    stack.client("secretsmanager").put_secret_value(SecretId=secret, SecretString=json.dumps({
        ACCOUNT: {"api_key_sid": API_KEY_SID, "api_key_secret": API_KEY_SECRET},
        SAMPLE_SUBACCOUNT_SID: {"api_key_sid": sub_key[0], "api_key_secret": sub_key[1]}}))
    at = factories.BASE_TIME + timedelta(seconds=10)
    for n, account in enumerate((ACCOUNT, SAMPLE_SUBACCOUNT_SID)):
        twilio_api.message(message_sid(300 + n), "delivered", at, sent=at, account=account)
        twilio_api.call(call_sid(300 + n), "completed", at, started=at, account=account)

    # When backfill runs for every account of the secret
    assert cli(["backfill", "--table-name", stack.table_name, "--topic-arn", stack.topic_arn,
                "--dead-letter-queue-url", stack.dlq_url, "--api-keys-secret-arn", secret,
                "--twilio-account-sids", f"{ACCOUNT},{SAMPLE_SUBACCOUNT_SID}",
                "--twilio-api-base-url", twilio_api.base_url, "--history-retention-days", stack.env["HISTORY_RETENTION_DAYS"],
                "--since", SINCE, "--until", UNTIL]) == 0

    # Then each account's listings were asked with its key, and each entity recorded as its account's
    assert {(path.split("/")[4], account) for path, account in twilio_api.requests} == {
        (ACCOUNT, ACCOUNT), (SAMPLE_SUBACCOUNT_SID, SAMPLE_SUBACCOUNT_SID)}
    states = stack.states()
    assert {states[f"message#{message_sid(300 + n)}"]["account_sid"] for n in range(2)} == {
        ACCOUNT, SAMPLE_SUBACCOUNT_SID}
    assert {states[f"call#{call_sid(300 + n)}"]["account_sid"] for n in range(2)} == {ACCOUNT, SAMPLE_SUBACCOUNT_SID}
    assert "2 message(s) and 2 call(s) listed, 4 changed, 0 failed" in capsys.readouterr().out
