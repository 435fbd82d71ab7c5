"""`redrive` and `replay` against moto: the stack's outputs, the stream, the queues, and the core."""

import json

import boto3
import pytest

from sink_dev.samples import SAMPLE_ACCOUNT_SID
from sink_local.stack import REGION
from sink_ops import redrive, replay
from tests.reliability.harness import on_failure_message, put_on_stream
from tests.support import factories as f
from tests.support.expectations import assert_expires_after_retention
from twilio_sink.dead_letters import DeadLetter

STREAM = "twilio-events"
STACK = "twilio-sink"


@pytest.fixture
def deployed(stack):
    """The stack plus what the template adds for recovery: the stream, the failure queue, the outputs."""
    kinesis = boto3.client("kinesis", region_name=REGION)
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    failure_queue = stack.sqs.create_queue(QueueName="stream-failures")["QueueUrl"]
    outputs = {"StatusTableName": stack.table_name, "NotificationTopicArn": stack.topic_arn,
               "DeadLetterQueueUrl": stack.dlq_url, "StreamFailureQueueUrl": failure_queue,
               "TwilioAccountSids": SAMPLE_ACCOUNT_SID, "HistoryRetentionDays": stack.env["HISTORY_RETENTION_DAYS"]}
    template = {"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                "Outputs": {name: {"Value": value} for name, value in outputs.items()}}
    boto3.client("cloudformation", region_name=REGION).create_stack(StackName=STACK,
                                                                   TemplateBody=json.dumps(template))
    stack.kinesis, stack.failure_queue = kinesis, failure_queue
    return stack


def failed_batch(deployed, items) -> list[dict]:
    records = put_on_stream(deployed.kinesis, STREAM, items)
    deployed.sqs.send_message(QueueUrl=deployed.failure_queue, MessageBody=on_failure_message(records))
    return records


def queued(deployed, url) -> list[dict]:
    return deployed._drain(url)


# ---- redrive ------------------------------------------------------------------------------------

def test_redrive_reprocesses_the_records_of_each_failure_and_deletes_it(deployed, capsys):
    failed_batch(deployed, [f.message("queued"), b"{not json", f.message("sent", seconds=1)])
    assert redrive.main(["--stack", STACK, "--wait-seconds", "0"]) == 0
    assert deployed.states()["message#MM1"]["status"] == "sent"
    for item in deployed.history("message#MM1"):
        assert_expires_after_retention(item, deployed)  # as the functions' history does
    assert [n["status"] for n in deployed.notifications()] == ["queued", "sent"]
    assert [d["reason"] for d in deployed.dead_letters()] == ["not_json"]
    assert queued(deployed, deployed.failure_queue) == []
    out = capsys.readouterr().out
    assert "redriven 3 record(s)" in out and "Done: 1 message(s), 3 record(s); 1 redriven and deleted, 0 kept" in out


def test_redrive_of_records_already_processed_doubles_nothing(deployed, consumer, context):
    records = failed_batch(deployed, [f.message("queued")])
    consumer.lambda_handler({"Records": records}, context)
    deployed.notifications()
    assert redrive.main(["--stack", STACK, "--wait-seconds", "0"]) == 0
    assert deployed.notifications() == []


def test_redrive_keeps_the_message_when_a_record_fails_again(deployed, fail, capsys):
    failed_batch(deployed, [f.message("queued")])
    fail("sns", "publish_batch", times=1)
    assert redrive.main(["--stack", STACK, "--wait-seconds", "0"]) == 1
    assert "failed again" in capsys.readouterr().out
    # the message is visible again at once; the next run publishes the pending change and deletes it
    assert redrive.main(["--stack", STACK, "--wait-seconds", "0"]) == 0
    assert [n["status"] for n in deployed.notifications()] == ["queued"]
    assert queued(deployed, deployed.failure_queue) == []


def test_redrive_keeps_the_message_when_the_stream_no_longer_holds_the_records(deployed, capsys):
    records = put_on_stream(deployed.kinesis, STREAM, [f.message("queued")])
    body = json.loads(on_failure_message(records))
    body["KinesisBatchInfo"]["startSequenceNumber"] = str(int(records[0]["kinesis"]["sequenceNumber"]) - 1)
    deployed.sqs.send_message(QueueUrl=deployed.failure_queue, MessageBody=json.dumps(body))
    assert redrive.main(["--stack", STACK, "--wait-seconds", "0"]) == 1
    assert "kept" in capsys.readouterr().out
    assert deployed.states() == {}
    assert len(queued(deployed, deployed.failure_queue)) == 1


def test_redrive_keeps_a_message_that_is_not_lambda_metadata(deployed, capsys):
    deployed.sqs.send_message(QueueUrl=deployed.failure_queue, MessageBody="hello")
    assert redrive.main(["--stack", STACK, "--wait-seconds", "0"]) == 1
    assert "not a Kinesis OnFailure record" in capsys.readouterr().out
    kept = deployed.sqs.receive_message(QueueUrl=deployed.failure_queue).get("Messages", [])
    assert [m["Body"] for m in kept] == ["hello"]


def test_redrive_dry_run_reads_and_decodes_but_changes_nothing(deployed, capsys):
    failed_batch(deployed, [f.message("queued"), b"\xff"])
    assert redrive.main(["--stack", STACK, "--dry-run", "--wait-seconds", "0"]) == 0
    assert "would redrive 2 record(s)" in capsys.readouterr().out
    assert deployed.states() == {} and deployed.notifications() == [] and deployed.dead_letters() == []
    assert len(queued(deployed, deployed.failure_queue)) == 1


def test_redrive_takes_explicit_resources_instead_of_a_stack(deployed):
    failed_batch(deployed, [f.message("queued")])
    assert redrive.main(["--stream-failure-queue-url", deployed.failure_queue, "--table-name", deployed.table_name,
                         "--topic-arn", deployed.topic_arn, "--dead-letter-queue-url", deployed.dlq_url,
                         "--twilio-account-sids", SAMPLE_ACCOUNT_SID, "--wait-seconds", "0",
                         "--history-retention-days", deployed.env["HISTORY_RETENTION_DAYS"]]) == 0
    assert deployed.states()["message#MM1"]["status"] == "queued"
    [item] = deployed.history("message#MM1")
    assert_expires_after_retention(item, deployed)


@pytest.mark.parametrize("command", [redrive, replay])
def test_commands_explain_a_missing_resource_or_stack(deployed, command, capsys):
    assert command.main([]) == 2
    assert "give --stack or" in capsys.readouterr().err
    assert command.main(["--stack", "no-such-stack"]) == 2
    assert "cannot read stack 'no-such-stack'" in capsys.readouterr().err


@pytest.mark.parametrize("command", [redrive, replay])
def test_commands_have_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        command.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--dry-run" in out and "--stack" in out


# ---- replay -------------------------------------------------------------------------------------

def letter(item: dict | bytes, reason: str, source: str = "kinesis") -> str:
    raw = item.decode("utf-8", "replace") if isinstance(item, bytes) else json.dumps(item)
    return DeadLetter.build(raw, reason=reason, detail="(from an older version)", source=source,
                            received_at="2026-01-01T12:00:00.000000Z",
                            origin={"sequence_number": "42", "shard_id": "shardId-000000000000"}).to_message()


def test_replay_removes_letters_that_now_succeed_and_keeps_poison_as_it_is(deployed, capsys):
    # Given letters a fixed version now accepts (one per sink), and one still poison
    fixed_kinesis, fixed_webhook = f.message("queued"), f.brand("brand-registered")
    still_poison = letter(b"{not json", "not_json")
    for body in (letter(fixed_kinesis, "invalid_payload"), letter(fixed_webhook, "unknown_type", "webhook"),
                 still_poison):
        deployed.sqs.send_message(QueueUrl=deployed.dlq_url, MessageBody=body)
    # When replayed
    assert replay.main(["--stack", STACK, "--wait-seconds", "0"]) == 1  # one kept
    # Then the fixed ones went through the pipeline and are gone; the poison one stays, once, unchanged
    assert {pk: s["status"] for pk, s in deployed.states().items()} == {"message#MM1": "queued",
                                                                       "brand#BN1": "registered"}
    assert sorted(n["status"] for n in deployed.notifications()) == ["queued", "registered"]
    for pk in ("message#MM1", "brand#BN1"):
        [item] = deployed.history(pk)
        assert_expires_after_retention(item, deployed)  # as the functions' history does
    remaining = queued(deployed, deployed.dlq_url)
    assert [json.dumps(r, separators=(",", ":"), ensure_ascii=False) for r in remaining] == [still_poison]
    out = capsys.readouterr().out
    assert "still poison" in out and "2 replayed and removed; kept 1 (1 still poison" in out


def test_replay_keeps_a_letter_whose_replay_hits_a_transient_failure(deployed, fail):
    deployed.sqs.send_message(QueueUrl=deployed.dlq_url, MessageBody=letter(f.message("queued"), "invalid_payload"))
    fail("dynamodb", "put_item", times=1)
    assert replay.main(["--stack", STACK, "--wait-seconds", "0"]) == 1
    assert replay.main(["--stack", STACK, "--wait-seconds", "0"]) == 0
    assert [n["status"] for n in deployed.notifications()] == ["queued"]
    assert queued(deployed, deployed.dlq_url) == []


def test_replay_replays_an_undecodable_record_from_its_base64(deployed):
    # An undecodable record's raw is Lambda's base64: replayed, it decodes exactly as it first did
    deployed.sqs.send_message(QueueUrl=deployed.dlq_url, MessageBody=DeadLetter.build(
        "gICA", reason="undecodable", detail="not UTF-8", source="kinesis",
        received_at="2026-01-01T12:00:00.000000Z").to_message())
    assert replay.main(["--stack", STACK, "--wait-seconds", "0"]) == 1
    assert len(queued(deployed, deployed.dlq_url)) == 1


def test_replay_keeps_a_truncated_letter(deployed, capsys):
    body = json.loads(letter(f.message("queued"), "oversized")) | {"raw_truncated": True}
    deployed.sqs.send_message(QueueUrl=deployed.dlq_url, MessageBody=json.dumps(body))
    assert replay.main(["--stack", STACK, "--wait-seconds", "0"]) == 1
    assert "not replayable" in capsys.readouterr().out
    assert deployed.states() == {}


def test_replay_dry_run_changes_nothing(deployed, capsys):
    deployed.sqs.send_message(QueueUrl=deployed.dlq_url, MessageBody=letter(f.message("queued"), "invalid_payload"))
    assert replay.main(["--stack", STACK, "--dry-run", "--wait-seconds", "0"]) == 0
    assert "would replay" in capsys.readouterr().out
    assert deployed.states() == {} and len(queued(deployed, deployed.dlq_url)) == 1


@pytest.mark.parametrize("command", [redrive, replay], ids=["redrive", "replay"])
def test_a_command_that_writes_needs_the_history_retention(deployed, command, capsys):
    # Resources given one by one, the retention left out: history written forever would be the result
    argv = ["--table-name", deployed.table_name, "--topic-arn", deployed.topic_arn, "--dead-letter-queue-url",
            deployed.dlq_url, "--stream-failure-queue-url", deployed.failure_queue,
            "--twilio-account-sids", SAMPLE_ACCOUNT_SID, "--wait-seconds", "0"]
    assert command.main(argv) == 2
    assert "--history-retention-days" in capsys.readouterr().err
    assert command.main([*argv, "--history-retention-days", "ninety"]) == 2
    assert "a whole number of days" in capsys.readouterr().err


def a_correction(**data) -> dict:
    """A correction as the reconciler builds it (reconcile/corrections.py): the family's own type."""
    return {"specversion": "1.0", "type": "com.twilio.comms-api.message.delivered", "id": "RC-MM1-delivered",
            "source": "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/SM1.json",
            "time": "2026-01-01T12:00:05.000000Z", "datacontenttype": "application/json", "data": data}


def test_a_correction_that_cannot_be_applied_is_a_dead_letter_and_replay_applies_it_once_it_can(deployed):
    from twilio_sink.pipeline import default_pipeline
    from twilio_sink.reconcile.corrections import apply

    # Given a correction whose payload cannot place it (no message_id): a dead letter, not an error
    outcome = apply(default_pipeline(), [a_correction(attempt="1")], "reconciler")
    [refused] = deployed.dead_letters()
    assert (refused["source"], refused["reason"], refused["event_id"]) == ("reconciler", "invalid_payload",
                                                                         "RC-MM1-delivered")
    assert list(outcome.dead_letters) == [0] and set(refused["origin"]) == {"batch"}
    # And a correction's letter that a fixed version accepts: replay applies it as the correction it is
    fixed = DeadLetter.build(json.dumps(a_correction(message_id="MM1", attempt="1")), reason="invalid_payload",
                             detail="(from an older version)", source="reconciler",
                             received_at="2026-01-01T12:00:06.000000Z", origin={"batch": "b1"})
    deployed.sqs.send_message(QueueUrl=deployed.dlq_url, MessageBody=fixed.to_message())
    assert replay.main(["--stack", STACK, "--wait-seconds", "0"]) == 0
    assert deployed.states()["message#MM1"]["status"] == "delivered"
    assert [n["status"] for n in deployed.notifications()] == ["delivered"]
    [kept] = deployed.history("message#MM1")
    assert kept["source"] == "reconciler"
    assert queued(deployed, deployed.dlq_url) == []
