"""The benchmark's AWS stand-in answers the core's calls the way moto does, so it cannot drift silently.

Each scenario runs the same calls twice — against moto and against `bench.fake_aws` — through real
boto3 clients, and the answers (minus request ids and generated message ids) must be equal.
"""

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from sink_bench.fake_aws import FakeAws
from sink_dev.paths import ROOT
from sink_dev.template import load_template, table_create_kwargs
from sink_local.stack import FAKE_CREDENTIALS, REGION

TABLE = "status-table"


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)


def clients() -> dict:
    return {name: boto3.client(name, region_name=REGION) for name in ("dynamodb", "sns", "sqs", "secretsmanager")}


def with_moto(scenario):
    with mock_aws():
        aws = clients()
        aws["dynamodb"].create_table(**table_create_kwargs(load_template(ROOT / "template.yaml"), table_name=TABLE))
        topic = aws["sns"].create_topic(Name="notifications")["TopicArn"]
        queue = aws["sqs"].create_queue(QueueName="dead-letters")["QueueUrl"]
        secret = aws["secretsmanager"].create_secret(Name="token", SecretString="s3cret")["ARN"]
        return scenario(aws, {"topic": topic, "queue": queue, "secret": secret})


def with_fake(scenario):
    fake = FakeAws(latency={service: 0.0 for service in ("dynamodb", "sns", "sqs", "secrets-manager")})
    aws = clients()
    for client in aws.values():
        fake.attach(client)
    names = {"topic": f"arn:aws:sns:{REGION}:123456789012:notifications",
             "queue": f"https://sqs.{REGION}.amazonaws.com/123456789012/dead-letters",
             "secret": f"arn:aws:secretsmanager:{REGION}:123456789012:secret:token-AbCdEf"}
    fake.dynamodb.create_table(TABLE)
    fake.sns.create_topic(names["topic"])
    fake.sqs.create_queue(names["queue"])
    fake.create_secret(names["secret"], "s3cret")
    return scenario(aws, names)


def same_answers(scenario):
    expected, actual = with_moto(scenario), with_fake(scenario)
    assert actual == expected
    return actual


def call(function, **kwargs) -> dict:
    """The answer without transport metadata, or the error as botocore parsed it."""
    try:
        answer = function(**kwargs)
    except ClientError as error:
        answer = {key: value for key, value in error.response.items() if key not in ("ResponseMetadata", "message", "Message")}
        answer["Error"] = {"Code": error.response["Error"]["Code"]}
    answer.pop("ResponseMetadata", None)
    # moto adds these unasked; real DynamoDB (and the fake) only when the request asks for them
    answer.pop("ConsumedCapacity", None)
    if answer.get("ItemCollectionMetrics") == {}:
        del answer["ItemCollectionMetrics"]
    return answer


def key(pk: str) -> dict:
    return {"pk": {"S": pk}, "sk": {"S": "state"}}


def state(pk: str, version: int, order_key: str, **pending: str) -> dict:
    return key(pk) | {"status": {"S": "queued"}, "version": {"N": str(version)}, "order_key": {"S": order_key},
                      "pending": {"M": {k: {"S": v} for k, v in pending.items()}}}


def test_put_item_only_if_absent_returns_the_old_item_when_it_exists():
    def scenario(aws, _):
        ddb = aws["dynamodb"]
        put = dict(TableName=TABLE, Item=state("message#MM1", 1, "k1", k1="note"),
                   ConditionExpression="attribute_not_exists(pk)", ReturnValuesOnConditionCheckFailure="ALL_OLD")
        return [call(ddb.put_item, **put), call(ddb.put_item, **put)]

    first, second = same_answers(scenario)
    assert first == {} and second["Error"]["Code"] == "ConditionalCheckFailedException" and second["Item"]


def test_conditional_update_sets_map_entries_refuses_regressions_and_removes_entries():
    def scenario(aws, _):
        ddb = aws["dynamodb"]
        ddb.put_item(TableName=TABLE, Item=state("message#MM1", 1, "k1"))

        def update(expected: int, order_key: str):
            return call(ddb.update_item, TableName=TABLE, Key=key("message#MM1"),
                        UpdateExpression="SET #a0 = :a0, #pending.#p0 = :p0, #order_key = :order_key, #version = :version",
                        ConditionExpression="#version = :expected AND #order_key < :order_key",
                        ExpressionAttributeNames={"#a0": "status", "#pending": "pending", "#p0": order_key,
                                                  "#order_key": "order_key", "#version": "version"},
                        ExpressionAttributeValues={":a0": {"S": "sent"}, ":p0": {"S": "note"},
                                                   ":order_key": {"S": order_key}, ":expected": {"N": str(expected)},
                                                   ":version": {"N": str(expected + 1)}},
                        ReturnValuesOnConditionCheckFailure="ALL_OLD")

        answers = [update(1, "k2"), update(1, "k3"), update(2, "k0"), update(7, "k9")]
        answers.append(call(ddb.update_item, TableName=TABLE, Key=key("message#MM1"),
                            UpdateExpression="REMOVE #pending.#p0", ExpressionAttributeNames={"#pending": "pending", "#p0": "k2"}))
        answers.append(call(ddb.batch_get_item, RequestItems={TABLE: {"Keys": [key("message#MM1")], "ConsistentRead": True}}))
        return answers

    answers = same_answers(scenario)
    assert answers[0] == {}
    assert [a["Error"]["Code"] for a in answers[1:4]] == ["ConditionalCheckFailedException"] * 3
    [item] = answers[5]["Responses"][TABLE]
    assert item["pending"] == {"M": {}} and item["version"] == {"N": "2"}


def test_claims_are_rewritten_only_while_each_is_one_of_its_expected_texts():
    """StatusStore.replace_claims: SET map entries and updated_at, ADD the version, each claim IN its texts."""

    def scenario(aws, _):
        ddb = aws["dynamodb"]
        ddb.put_item(TableName=TABLE, Item=key("message#1") | {"version": {"N": "1"}, "claims": {"M": {
            "E1": {"S": "|t|aa|100"}, "E2": {"S": "|t|aa|100"}}}})

        def rewrite(first_expected: str) -> dict:
            return call(ddb.update_item, TableName=TABLE, Key=key("message#1"),
                        UpdateExpression="SET #claims.#c0 = :c0, #claims.#c1 = :c1, #updated = :updated ADD #version :one",
                        ConditionExpression="#claims.#c0 IN (:h0_0, :h0_1) AND #claims.#c1 IN (:h1_0, :h1_1)",
                        ExpressionAttributeNames={"#claims": "claims", "#version": "version", "#updated": "updated_at",
                                                  "#c0": "E1", "#c1": "E2"},
                        ExpressionAttributeValues={":c0": {"S": "|t|aa|0"}, ":c1": {"S": "|t|aa|0"},
                                                   ":h0_0": {"S": first_expected}, ":h0_1": {"S": "||aa|100"},
                                                   ":h1_0": {"S": "|t|aa|100"}, ":h1_1": {"S": "||aa|100"},
                                                   ":updated": {"S": "2030-01-01T00:00:00.000000Z"}, ":one": {"N": "1"}})

        taken_over = rewrite("|t|bb|200")  # E1 is no longer as expected: nothing is written
        held = rewrite("|t|aa|100")
        read = call(ddb.batch_get_item, RequestItems={TABLE: {"Keys": [key("message#1")], "ConsistentRead": True}})
        return taken_over, held, read["Responses"][TABLE][0]

    taken_over, held, item = same_answers(scenario)
    assert taken_over["Error"]["Code"] == "ConditionalCheckFailedException" and held == {}
    assert item["version"] == {"N": "2"} and item["claims"]["M"]["E1"] == {"S": "|t|aa|0"}


def test_batch_write_then_batch_get_returns_what_exists():
    def scenario(aws, _):
        ddb = aws["dynamodb"]
        items = [state(f"message#MM{i}", 1, f"k{i}") for i in range(30)]
        writes = [call(ddb.batch_write_item, RequestItems={TABLE: [{"PutRequest": {"Item": item}} for item in items[i:i + 25]]})
                  for i in range(0, 30, 25)]
        got = call(ddb.batch_get_item, RequestItems={TABLE: {"Keys": [key(f"message#MM{i}") for i in range(25, 35)],
                                                             "ConsistentRead": True}})
        got["Responses"][TABLE].sort(key=lambda item: item["pk"]["S"])
        return writes + [got]

    *writes, got = same_answers(scenario)
    assert writes == [{"UnprocessedItems": {}}] * 2
    assert [item["pk"]["S"] for item in got["Responses"][TABLE]] == [f"message#MM{i}" for i in range(25, 30)]


def test_transactions_apply_all_or_report_why_each_action_was_cancelled():
    def scenario(aws, _):
        ddb = aws["dynamodb"]
        for pk in ("message#A", "message#B"):
            ddb.put_item(TableName=TABLE, Item=state(pk, 1, "k1", k1="note", k2="other"))

        def remove(pk: str, entry: str, **condition):
            return {"Update": {"TableName": TABLE, "Key": key(pk), "UpdateExpression": "REMOVE #pending.#p0",
                               "ExpressionAttributeNames": {"#pending": "pending", "#p0": entry}, **condition}}

        refused = {"ConditionExpression": "attribute_not_exists(pk)", "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
        answers = [call(ddb.transact_write_items, TransactItems=[remove("message#A", "k1"), remove("message#B", "k1")]),
                   call(ddb.transact_write_items, TransactItems=[remove("message#A", "k2"), remove("message#B", "k2", **refused)])]
        got = ddb.batch_get_item(RequestItems={TABLE: {"Keys": [key("message#A"), key("message#B")]}})
        answers.append(sorted(json.dumps(item["pending"], sort_keys=True) for item in got["Responses"][TABLE]))
        return answers

    done, cancelled, pending = same_answers(scenario)
    assert done == {}
    assert [reason["Code"] for reason in cancelled["CancellationReasons"]] == ["None", "ConditionalCheckFailed"]
    assert pending == ['{"M": {"k2": {"S": "other"}}}'] * 2


def test_sns_publish_and_publish_batch_acknowledge_every_entry():
    def scenario(aws, names):
        sns = aws["sns"]
        single = call(sns.publish, TopicArn=names["topic"], Message="{}",
                      MessageAttributes={"entity": {"DataType": "String", "StringValue": "message"}})
        batch = call(sns.publish_batch, TopicArn=names["topic"], PublishBatchRequestEntries=[
            {"Id": str(i), "Message": json.dumps({"n": i}),
             "MessageAttributes": {"status": {"DataType": "String", "StringValue": "sent"}}} for i in range(10)])
        too_many = call(sns.publish_batch, TopicArn=names["topic"], PublishBatchRequestEntries=[
            {"Id": str(i), "Message": "{}"} for i in range(11)])
        return [sorted(single), [entry["Id"] for entry in batch["Successful"]], batch["Failed"], too_many["Error"]]

    single, ids, failed, too_many = same_answers(scenario)
    assert single == ["MessageId"] and ids == [str(i) for i in range(10)] and failed == []
    assert too_many == {"Code": "TooManyEntriesInBatchRequest"}


def test_sqs_send_message_batch_acknowledges_every_entry_with_its_md5():
    def scenario(aws, names):
        answer = call(aws["sqs"].send_message_batch, QueueUrl=names["queue"],
                      Entries=[{"Id": str(i), "MessageBody": json.dumps({"reason": "not_json", "n": i})} for i in range(3)])
        return [(entry["Id"], entry["MD5OfMessageBody"]) for entry in answer["Successful"]], answer.get("Failed", [])

    successful, failed = same_answers(scenario)
    assert len(successful) == 3 and failed == []


def test_secrets_manager_returns_the_secret_string():
    def scenario(aws, names):
        return aws["secretsmanager"].get_secret_value(SecretId=names["secret"])["SecretString"]

    assert same_answers(scenario) == "s3cret"


def test_unmodelled_expressions_are_refused_rather_than_answered_wrongly():
    def scenario(aws, _):
        return call(aws["dynamodb"].update_item, TableName=TABLE, Key=key("message#MM1"),
                    UpdateExpression="DELETE #n :one", ExpressionAttributeNames={"#n": "n"},
                    ExpressionAttributeValues={":one": {"SS": ["1"]}})

    assert with_fake(scenario)["Error"]["Code"] == "ValidationException"


# ---- capacity units by DynamoDB's documented rules ----------------------------------------------

def charged(fake: FakeAws) -> dict[tuple[str, str, str], float]:
    units = dict(fake.dynamodb.capacity.units)
    fake.dynamodb.capacity.units.clear()
    return units


def padded_state(pk: str, size: int, **extra) -> dict:
    """A state item of exactly `size` bytes (names + values), with `extra` string attributes."""
    from sink_bench.fake_aws import item_size

    item = {**key(pk), "version": {"N": "1"}} | {name: {"S": value} for name, value in extra.items()}
    item["data"] = {"S": ""}
    item["data"]["S"] = "x" * (size - item_size(item))
    assert item_size(item) == size
    return item


def test_item_size_is_names_plus_values():
    from sink_bench.fake_aws import item_size

    assert item_size({"pk": {"S": "ab"}, "n": {"N": "12345"}}) == (2 + 2) + (1 + 4)  # 5 digits: 3 + 1 bytes
    assert item_size({"m": {"M": {"k": {"S": "v"}}}}) == 1 + 3 + (1 + 1 + 1)  # map: 3 + per entry name, value, 1


def test_writes_are_charged_per_kilobyte_on_the_larger_of_before_and_after_and_when_refused():
    fake = FakeAws(latency={"dynamodb": 0.0})
    ddb = clients()["dynamodb"]
    fake.attach(ddb)
    fake.dynamodb.create_table(TABLE)
    ddb.put_item(TableName=TABLE, Item=padded_state("a", 1024))
    assert charged(fake) == {("PutItem", "state", "WRU"): 1}
    ddb.put_item(TableName=TABLE, Item=padded_state("b", 1025))
    assert charged(fake) == {("PutItem", "state", "WRU"): 2}
    # an update that shrinks a 1,025-byte item is charged on the item before it
    ddb.update_item(TableName=TABLE, Key=key("b"), UpdateExpression="SET #d = :d", ExpressionAttributeNames={"#d": "data"},
                    ExpressionAttributeValues={":d": {"S": ""}})
    assert charged(fake) == {("UpdateItem", "state", "WRU"): 2}
    # a refused conditional write is charged all the same
    with pytest.raises(ClientError):
        ddb.put_item(TableName=TABLE, Item=padded_state("a", 100), ConditionExpression="attribute_not_exists(pk)")
    assert charged(fake) == {("PutItem", "state", "WRU"): 1}
    # the claims' share of a state write is its own kind: what the write would cost less without them
    ddb.put_item(TableName=TABLE, Item=padded_state("c", 1100, claims="y" * 200))
    assert charged(fake) == {("PutItem", "state", "WRU"): 1, ("PutItem", "outbox", "WRU"): 1}
    # transactions twice
    ddb.transact_write_items(TransactItems=[{"Put": {"TableName": TABLE, "Item": padded_state("d", 500)}}])
    assert charged(fake) == {("TransactWriteItems", "state", "WRU"): 2}
    # history items by what they are, 1 WRU per KB each in a batch
    ddb.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": {"pk": {"S": "e"}, "sk": {"S": f"event#{i}"}}}}
                                               for i in range(3)]})
    assert charged(fake) == {("BatchWriteItem", "history", "WRU"): 3}


def test_reads_are_charged_per_4_kb_per_item_even_when_absent_and_half_when_eventually_consistent():
    fake = FakeAws(latency={"dynamodb": 0.0})
    ddb = clients()["dynamodb"]
    fake.attach(ddb)
    fake.dynamodb.create_table(TABLE)
    ddb.put_item(TableName=TABLE, Item=padded_state("a", 4097))
    charged(fake)
    ddb.batch_get_item(RequestItems={TABLE: {"Keys": [key("a"), key("absent")], "ConsistentRead": True}})
    assert charged(fake) == {("BatchGetItem", "state", "RRU"): 2 + 1}
    ddb.batch_get_item(RequestItems={TABLE: {"Keys": [key("a")]}})
    assert charged(fake) == {("BatchGetItem", "state", "RRU"): 1}
