"""`twilio-sink invoke` before it reaches Docker: the environment it gives a function, and its errors.

tests/template/test_sam_local_invoke.py runs it for real, in SAM's container.
"""

from sink_cli.main import main
from sink_local.invoke import deployed_environment

OUTPUTS = {
    "StatusTableName": "twilio-event-sink-StatusTable-1", "NotificationTopicArn": "arn:aws:sns:eu-west-1:1:topic",
    "DeadLetterQueueUrl": "https://sqs.eu-west-1.amazonaws.com/1/dead", "AuthTokenSecretArn": "arn:aws:secretsmanager:x",
    "WebhookUrl": "https://example.execute-api.eu-west-1.amazonaws.com/events",
}


def test_a_deployed_stack_gives_each_function_its_resources_names_from_the_outputs():
    consumer = deployed_environment("StreamConsumerFunction", OUTPUTS)
    assert consumer == {"STATUS_TABLE_NAME": OUTPUTS["StatusTableName"], "TOPIC_ARN": OUTPUTS["NotificationTopicArn"],
                        "DEAD_LETTER_QUEUE_URL": OUTPUTS["DeadLetterQueueUrl"]}
    webhook = deployed_environment("WebhookFunction", OUTPUTS)
    assert webhook == consumer | {"AUTH_TOKEN_SECRET_ARN": OUTPUTS["AuthTokenSecretArn"]}


def test_without_a_running_local_stack_it_says_how_to_start_one(tmp_path, capsys):
    assert main(["invoke", "consumer", "events/kinesis/all.json", "--state-file", str(tmp_path / "none.json")]) == 1
    assert "twilio-sink serve" in capsys.readouterr().err
