"""The reconciler against the stand-in of Twilio's REST API and the moto stack, with events dropped on purpose."""

import json
import time
from datetime import UTC, datetime, timedelta

from sink_local.twilio_api import ACCOUNT, API_KEY_SECRET, API_KEY_SID
from tests.reconcile.histories import message_sid, tollfree_sid, with_drops
from tests.support import factories
from tests.support.expectations import assert_expires_after_retention
from tests.support.sinks import consume


def far() -> float:
    """A deadline no test run reaches."""
    return time.monotonic() + 3600


def unsettled(stack) -> set[str]:
    return {item["pk"] for item in stack.states().values() if "unsettled" in item}


def test_dropped_events_are_recovered_with_one_notification_each(stack, consumer, context, twilio_api, make_reconciler):
    # Given entities whose later events were lost (about half of them), delivered through the stream
    histories = with_drops(twilio_api)
    assert consume(consumer, context, histories.delivered)["batchItemFailures"] == []
    stack.notifications()  # what the real events announced
    lost = {pk for pk, status in histories.truth.items() if histories.last_arrived[pk] != status}
    assert len(lost) >= 10 and unsettled(stack) >= lost

    # When the reconciler runs
    counts = make_reconciler().run(far())

    # Then every entity has Twilio's status, each correction announced exactly once, as a change
    states = stack.states()
    assert {pk: states[pk]["status"] for pk in histories.truth} == histories.truth
    notices = stack.notifications()
    assert sorted(f"{n['entity']}#{n['id']}" for n in notices) == sorted(lost)
    for notice in notices:
        pk = f"{notice['entity']}#{notice['id']}"
        assert notice["status"] == histories.truth[pk]
        assert notice["previous_status"] == histories.last_arrived[pk]
        assert notice["_attributes"]["status"] == histories.truth[pk]
    corrected = next(pk for pk in lost if pk.startswith("message#"))
    assert [h["source"] for h in stack.history(corrected)][-1] == "reconciler"
    assert_expires_after_retention(stack.history(corrected)[-1], stack)
    assert counts["corrected"] == len(lost)
    assert counts["unreachable"] == 0
    # Final statuses left the index; what Twilio still reports as pending (or may still change) stays, postponed.
    still = {"brand#BN" + "3" * 32, f"tollfree_verification#{tollfree_sid(2)}", f"tollfree_verification#{tollfree_sid(3)}"}
    assert unsettled(stack) == still
    # Each correction in its family's own type and payload: a call's status is its callback's CallStatus,
    # a Programmable Messaging message restates it in UPPERCASE.
    for pk in lost - {pk for pk in lost if pk.startswith(("brand#", "campaign#", "tollfree"))}:
        data = json.loads(states[pk]["data"])
        if pk.startswith("call#"):
            assert states[pk]["event_type"].startswith("com.twilio.voice.status-callback.call.")
            assert data["request"]["parameters"]["CallStatus"] == histories.truth[pk]
        elif "messageSid" in data:
            assert states[pk]["event_type"] == f"com.twilio.messaging.message.{histories.truth[pk]}"
            assert data["messageStatus"] == histories.truth[pk].upper()
        else:
            assert states[pk]["event_type"] == f"com.twilio.comms-api.message.{histories.truth[pk]}"
    assert {pk.split("#")[0] for pk in lost} == {"message", "call", "brand", "campaign", "tollfree_verification"}
    assert {n["event_type"].rsplit(".", 1)[0] for n in notices if n["entity"] == "message"} == {
        "com.twilio.comms-api.message", "com.twilio.messaging.message"}

    # And a second run (Twilio unchanged) corrects and announces nothing
    again = make_reconciler(now=datetime.now(UTC) + timedelta(days=30)).run(far())
    assert again["corrected"] == 0 and again["checked"] == len(still)
    assert stack.notifications() == []


def deliver_while_twilio_is_asked(twilio_api, sid: str, deliver) -> None:
    """The stand-in calls `deliver()` when first asked about `sid`, before answering: a real event
    arriving between the reconciler's index read and its write."""
    original = twilio_api._answer

    def answer(path, query, account):
        if sid in path and twilio_api.fetched(sid) == 1:
            deliver()
        return original(path, query, account)

    twilio_api._answer = answer


def test_an_answer_never_regresses_what_events_moved_further(stack, consumer, context, twilio_api, make_reconciler):
    # Given a message the sink saw as `sent`; while Twilio is asked (and answers `delivered`), `read` arrives
    sid = message_sid(1)
    consume(consumer, context, [factories.message("sent", sid, 1, account_sid=ACCOUNT)])
    stack.notifications()
    twilio_api.message(sid, "delivered", factories.BASE_TIME + timedelta(seconds=2))
    deliver_while_twilio_is_asked(twilio_api, sid, lambda: consume(
        consumer, context, [factories.message("read", sid, 3, account_sid=ACCOUNT)], first_sequence=2))

    # When the reconciler runs
    counts = make_reconciler().run(far())

    # Then `read` stays, announced once by its own event, and the answer changed nothing
    assert stack.states()[f"message#{sid}"]["status"] == "read"
    assert [(n["status"], n["previous_status"]) for n in stack.notifications()] == [("read", "sent")]
    assert counts["corrected"] == 0 and counts["checked"] == 1


def test_a_real_event_and_a_reconciliation_of_the_same_change_announce_it_once(
        stack, consumer, context, twilio_api, make_reconciler):
    # Given a message stuck at `sent`, delivered in fact; the real `delivered` event arrives while
    # the reconciler is asking Twilio (within the second Twilio reports as date_updated)
    sid = message_sid(2)
    consume(consumer, context, [factories.message("sent", sid, 1, account_sid=ACCOUNT)])
    stack.notifications()
    twilio_api.message(sid, "delivered", factories.BASE_TIME + timedelta(seconds=2))
    real_delivered = factories.message("delivered", sid, 2.25, account_sid=ACCOUNT)
    deliver_while_twilio_is_asked(twilio_api, sid, lambda: consume(consumer, context, [real_delivered],
                                                                   first_sequence=2))

    # When the reconciler runs, and the real event is delivered again afterwards (Twilio retries)
    make_reconciler().run(far())
    consume(consumer, context, [real_delivered], first_sequence=3)

    # Then the change is announced once, by whichever came first (here: the real event)
    notices = stack.notifications()
    assert [(n["status"], n["previous_status"]) for n in notices] == [("delivered", "sent")]
    assert stack.states()[f"message#{sid}"]["status"] == "delivered"


def test_a_late_real_event_of_a_corrected_change_announces_nothing(
        stack, consumer, context, twilio_api, make_reconciler):
    # Given a message corrected to `delivered` by the reconciler
    sid = message_sid(3)
    consume(consumer, context, [factories.message("sent", sid, 1, account_sid=ACCOUNT)])
    twilio_api.message(sid, "delivered", factories.BASE_TIME + timedelta(seconds=2))
    make_reconciler().run(far())
    assert [n["status"] for n in stack.notifications()][-1] == "delivered"

    # When Twilio's retries finally deliver the real event of that change (stamped within that second)
    consume(consumer, context, [factories.message("delivered", sid, 2.5, account_sid=ACCOUNT)], first_sequence=2)

    # Then it changes and announces nothing
    assert stack.notifications() == []


def test_404_is_not_found_and_postponed(stack, consumer, context, twilio_api, make_reconciler):
    sid = message_sid(4)
    consume(consumer, context, [factories.message("sent", sid, 1, account_sid=ACCOUNT)])
    before = stack.states()[f"message#{sid}"]["check_after"]

    counts = make_reconciler().run(far())

    assert counts["not_found"] == 1 and counts["checked"] == 0
    state = stack.states()[f"message#{sid}"]
    assert state["status"] == "sent" and state["check_after"] > before
    # Not due again in the same hour: a deleted message is not asked about every run.
    assert make_reconciler().run(far())["not_found"] == 0


def test_429_and_5xx_are_retried_with_backoff(stack, consumer, context, twilio_api, make_reconciler):
    sid = message_sid(5)
    consume(consumer, context, [factories.message("sent", sid, 1, account_sid=ACCOUNT)])
    twilio_api.message(sid, "delivered", factories.BASE_TIME + timedelta(seconds=2))
    twilio_api.faults["*"] = [429, 503, 429]

    counts = make_reconciler().run(far())

    assert counts["corrected"] == 1
    assert twilio_api.fetched(sid) == 4
    assert len(make_reconciler.sleeps) == 3
    assert stack.states()[f"message#{sid}"]["status"] == "delivered"


def test_unreachable_twilio_leaves_the_entity_due_for_the_next_run(stack, consumer, context, twilio_api, make_reconciler):
    # Given Twilio answering 500 to every request of the first run
    sid = message_sid(6)
    consume(consumer, context, [factories.message("sent", sid, 1, account_sid=ACCOUNT)])
    twilio_api.message(sid, "failed", factories.BASE_TIME + timedelta(seconds=2))
    twilio_api.faults["*"] = [500] * 4
    before = stack.states()[f"message#{sid}"]["check_after"]

    counts = make_reconciler().run(far())

    # Then it is counted unreachable and stays due
    assert counts["unreachable"] == 1 and counts["corrected"] == 0
    assert stack.states()[f"message#{sid}"]["check_after"] == before
    # And the next run corrects it
    assert make_reconciler().run(far())["corrected"] == 1
    assert stack.states()[f"message#{sid}"]["status"] == "failed"


def test_an_account_without_api_key_is_unreachable(stack, consumer, context, twilio_api, make_reconciler):
    from twilio_sink.reconcile.client import ApiKey

    # Given API keys for two other accounts only
    sid = message_sid(7)
    consume(consumer, context, [factories.message("sent", sid, 1, account_sid=ACCOUNT)])
    twilio_api.message(sid, "delivered", factories.BASE_TIME + timedelta(seconds=2))
    others = {f"AC{n:032x}": ApiKey("SK" + "1" * 32, "secret") for n in (1, 2)}

    counts = make_reconciler(keys=others).run(far())

    assert counts["unreachable"] == 1
    assert twilio_api.requests == []


def test_work_is_bounded_by_the_deadline_and_the_next_run_continues(
        stack, consumer, context, twilio_api, make_reconciler):
    from twilio_sink.reconcile.run import SAFETY_SECONDS

    # Given many quiet messages, and a run whose clock allows only a few index pages
    histories = with_drops(twilio_api, messages=60, seed=3)
    consume(consumer, context, histories.delivered)
    stack.notifications()
    lost = {pk for pk, status in histories.truth.items() if histories.last_arrived[pk] != status}
    ticks = iter(range(10**6))

    def clock() -> float:
        return float(next(ticks))

    # When runs stop at their deadline
    first = make_reconciler().run(SAFETY_SECONDS + 4, clock=clock)

    # Then the first did part of the work, and later runs finish it, announcing each correction once
    assert 0 < first["corrected"] < len(lost)
    total = first["corrected"]
    for _ in range(120):  # each run reads about three of the 40 index shards (5 entities), from a random one
        ticks = iter(range(10**6))
        counts = make_reconciler().run(SAFETY_SECONDS + 4, clock=clock)
        total += counts["corrected"]
    states = stack.states()
    assert {pk: states[pk]["status"] for pk in histories.truth} == histories.truth
    assert total == len(lost)
    assert len(stack.notifications()) == len(lost)


def test_the_scheduled_function_reads_the_keys_secret_and_emits_metrics(
        monkeypatch, twilio_api, consumer, context, capsys):
    from moto import mock_aws

    from sink_dev.samples import LOCAL_TEST_AUTH_TOKEN
    from sink_local.stack import Stack, load_function
    from tests.conftest import _reset_caches

    with mock_aws():
        # Given the stack with the reconciler on, and API keys in its secret
        # (its Twilio client pointed at the stand-in by the template's TwilioApiBaseUrl)
        stack = Stack(LOCAL_TEST_AUTH_TOKEN, parameters={"ReconcileEveryMinutes": "15",
                                                         "TwilioApiBaseUrl": twilio_api.base_url})
        for name, value in stack.env.items():
            monkeypatch.setenv(name, value)
        secret_arn = stack.env["TWILIO_API_KEYS_SECRET_ARN"]
        stack.client("secretsmanager").put_secret_value(SecretId=secret_arn, SecretString=json.dumps(
            {ACCOUNT: {"api_key_sid": API_KEY_SID, "api_key_secret": API_KEY_SECRET}}))
        _reset_caches()
        sid = message_sid(8)
        consume(consumer, context, [factories.message("sent", sid, 1, account_sid=ACCOUNT)])
        twilio_api.message(sid, "delivered", factories.BASE_TIME + timedelta(seconds=2))
        # Due in 15 minutes: make it due now.
        stack.ddb.update_item(TableName=stack.table_name, Key={"pk": {"S": f"message#{sid}"}, "sk": {"S": "state"}},
                              UpdateExpression="SET check_after = :c",
                              ExpressionAttributeValues={":c": {"S": "2000-01-01T00:00:00.000000Z"}})
        capsys.readouterr()

        # When the scheduled function runs
        reconciler = load_function("reconciler")
        counts = reconciler.lambda_handler({"source": "aws.events"}, context)

        # Then it corrected the message with the API key of its account, and said so in its metrics
        assert counts == {"checked": 1, "corrected": 1, "not_found": 0, "unreachable": 0}
        assert stack.states()[f"message#{sid}"]["status"] == "delivered"
        assert {account for _, account in twilio_api.requests} == {ACCOUNT}  # authenticated as its account
        emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
        assert any(m.get("ReconcilerCorrections") == [1.0] or m.get("ReconcilerCorrections") == 1.0
                   for m in emitted)
        _reset_caches()


def test_a_correction_whose_publish_failed_is_published_once_in_the_same_run(
        stack, consumer, context, twilio_api, make_reconciler, fail):
    # Given a quiet message, and SNS refusing the reconciler's first publish
    sid = message_sid(9)
    consume(consumer, context, [factories.message("sent", sid, 1, account_sid=ACCOUNT)])
    stack.notifications()
    twilio_api.message(sid, "undelivered", factories.BASE_TIME + timedelta(seconds=2))
    refused = fail("sns", "publish_batch", times=1)

    # When the reconciler runs
    counts = make_reconciler().run(far())

    # Then the correction is written once and its notice published once (the retry republishes it)
    assert refused["left"] == 0
    assert counts["corrected"] == 1
    assert [(n["status"], n["previous_status"]) for n in stack.notifications()] == [("undelivered", "sent")]
    # Published: its history item (written only after the publish) is there.
    assert [h["source"] for h in stack.history(f"message#{sid}")][-1] == "reconciler"


def two_accounts_messages(twilio_api, per_account: int = 3) -> tuple[list[dict], dict[str, str]]:
    """Messages of two accounts stuck at `sent`, whose payloads name no account (as the seed's
    `message.sent` ones): only the events' `source` does, and the state records it. Their events,
    and pk -> account."""
    from sink_dev.samples import SAMPLE_SUBACCOUNT_SID

    events, accounts = [], {}
    for n in range(2 * per_account):
        account = (ACCOUNT, SAMPLE_SUBACCOUNT_SID)[n % 2]
        sid = message_sid(100 + n)
        event = factories.message("sent", sid, 1)
        event["source"] = f"/2010-04-01/Accounts/{account}/Messages/{sid}"
        events.append(event)
        accounts[f"message#{sid}"] = account
        twilio_api.message(sid, "delivered", factories.BASE_TIME + timedelta(seconds=2), account=account)
    return events, accounts


def test_each_entity_is_asked_about_as_the_account_the_sink_recorded(stack, consumer, context, twilio_api,
                                                                     make_reconciler):
    from sink_dev.samples import SAMPLE_SUBACCOUNT_SID
    from twilio_sink.reconcile.client import ApiKey

    # Given messages of two accounts (an ISV and its subaccount) whose payloads name no account, and
    # an API key for each account (the stand-in answers a key of one account 401 on the other's paths)
    events, accounts = two_accounts_messages(twilio_api)
    consume(consumer, context, events)
    stack.notifications()
    assert {pk: stack.states()[pk]["account_sid"] for pk in accounts} == accounts
    twilio_api.api_key("SK" + "2" * 32, "subaccount-secret", SAMPLE_SUBACCOUNT_SID)
    keys = {ACCOUNT: ApiKey(API_KEY_SID, API_KEY_SECRET), SAMPLE_SUBACCOUNT_SID: ApiKey("SK" + "2" * 32,
                                                                                       "subaccount-secret")}

    # When the reconciler runs
    counts = make_reconciler(keys=keys).run(far())

    # Then every message was asked about as its own account, and corrected once
    assert counts["corrected"] == len(accounts) and counts["unreachable"] == 0
    asked = {path.split("/")[6].removesuffix(".json"): account for path, account in twilio_api.requests}
    assert {f"message#{sid}": account for sid, account in asked.items()} == accounts
    states = stack.states()
    assert {pk: states[pk]["status"] for pk in accounts} == dict.fromkeys(accounts, "delivered")
    assert len(stack.notifications()) == len(accounts)


def test_entities_of_an_account_without_api_key_are_counted_once_per_run(stack, consumer, context, twilio_api,
                                                                          make_reconciler, caplog):
    from sink_dev.samples import SAMPLE_SUBACCOUNT_SID

    # Given messages of two accounts, and an API key for one of them only
    events, accounts = two_accounts_messages(twilio_api)
    consume(consumer, context, events)
    stack.notifications()
    caplog.clear()

    # When the reconciler runs
    counts = make_reconciler().run(far())

    # Then the keyed account's messages are corrected, the other's are unreachable, with one warning
    # that names the account and how many of its entities wait
    keyless = [pk for pk, account in accounts.items() if account == SAMPLE_SUBACCOUNT_SID]
    assert counts["corrected"] == len(accounts) - len(keyless) and counts["unreachable"] == len(keyless)
    warnings = [r for r in caplog.records if "no API key" in r.getMessage()]
    assert [(r.account_sid, r.entities) for r in warnings] == [(SAMPLE_SUBACCOUNT_SID, len(keyless))]
    assert all(account == ACCOUNT for _, account in twilio_api.requests)
    # And they stay due: a key added before the next run gets them checked.
    assert {pk for pk in keyless if stack.states()[pk]["status"] == "sent"} == set(keyless)


def test_a_failed_account_read_fails_the_run_and_the_next_run_does_the_work(stack, consumer, context, twilio_api,
                                                                             make_reconciler, fail):
    import pytest
    from botocore.exceptions import ClientError

    from sink_dev.samples import SAMPLE_SUBACCOUNT_SID
    from twilio_sink.reconcile.client import ApiKey

    # Given messages whose account only their state records, and DynamoDB throttling that read once
    events, accounts = two_accounts_messages(twilio_api)
    consume(consumer, context, events)
    stack.notifications()
    twilio_api.api_key("SK" + "2" * 32, "subaccount-secret", SAMPLE_SUBACCOUNT_SID)
    keys = {ACCOUNT: ApiKey(API_KEY_SID, API_KEY_SECRET),
            SAMPLE_SUBACCOUNT_SID: ApiKey("SK" + "2" * 32, "subaccount-secret")}
    throttled = fail("dynamodb", "batch_get_item", when=lambda kwargs: "ProjectionExpression" in str(kwargs))

    # When a run meets it, it fails (the function errs, ReconcilerErrorsAlarm) having asked Twilio nothing
    with pytest.raises(ClientError):
        make_reconciler(keys=keys).run(far())
    assert throttled["left"] == 0 and twilio_api.requests == []

    # Then the next run finds every entity still due and corrects each once
    assert make_reconciler(keys=keys).run(far())["corrected"] == len(accounts)
    assert len(stack.notifications()) == len(accounts)


def test_the_claims_of_a_run_hold_until_its_invocation_ends_not_longer(stack, consumer, context, twilio_api,
                                                                         make_reconciler):
    # Given entities whose later events were lost, and a run with 60 s left of its invocation
    histories = with_drops(twilio_api)
    consume(consumer, context, histories.delivered)
    lost = {pk for pk, status in histories.truth.items() if histories.last_arrived[pk] != status}
    started = time.time()
    make_reconciler().run(time.monotonic() + 60)
    # Then each correction's claim holds until that invocation has certainly ended (its timeout plus
    # 2 s for the clocks), not the 15 minutes of a run nothing stops: a taker need not wait longer
    states = stack.states()
    untils = [int(claim.rsplit("|", 1)[1]) for pk in lost for claim in states[pk]["claims"].values()]
    assert untils and all(started < until <= time.time() + 60 + 3 for until in untils)
