"""The batch-wide requests against moto: one write per entity, no clean-up write, failures stay local."""

from tests.support import factories as f
from tests.support.expectations import unpublished, unpublished_claims
from tests.support.sinks import consume, failed_sequences, kinesis_batch
from twilio_sink.envelope import CloudEvent


def calls(stack):
    """The names of the core's DynamoDB calls from now on."""
    from twilio_sink import aws

    names: list[str] = []
    aws.client("dynamodb").meta.events.register("before-call.*.*", lambda model, **_: names.append(model.name))
    return names


def test_a_batch_writes_each_entity_once_and_its_history_after_publishing(stack, consumer, context):
    names = calls(stack)
    consume(consumer, context, [f.message("queued", message_id=f"MM{i}") for i in range(5)])
    # one read, one conditional write per entity, one history request: no clean-up write
    assert names == ["BatchGetItem"] + ["PutItem"] * 5 + ["BatchWriteItem"]
    assert len(stack.notifications()) == 5
    assert {pk: len(claims) for pk, claims in unpublished_claims(stack).items()} == {f"message#MM{i}": 0
                                                                                    for i in range(5)}


def test_the_next_write_drops_the_settled_claims(stack, consumer, context):
    consume(consumer, context, [f.message("queued")])
    [queued_id] = stack.states()["message#MM1"]["claims"]
    names = calls(stack)
    consume(consumer, context, [f.message("sent", seconds=1)], first_sequence=2)
    # the claims were checked (one read of their history keys) and the settled one left the item
    assert names == ["BatchGetItem", "BatchGetItem", "UpdateItem", "BatchWriteItem"]
    claims = stack.states()["message#MM1"]["claims"]
    assert queued_id not in claims and len(claims) == 1 and unpublished(stack) == set()
    assert [(n["status"], n["previous_status"]) for n in stack.notifications()] == [("queued", None),
                                                                                  ("sent", "queued")]


def test_the_winners_claim_is_stored_without_its_time_and_still_proves_published(stack, consumer, context):
    # Given queued and sent of one message in one batch: two claims, sent's is the item's own winner
    queued, sent = f.message("queued"), f.message("sent", seconds=1)
    consume(consumer, context, [queued, sent])
    state = stack.states()["message#MM1"]
    assert state["claims"][sent["id"]].split("|")[1] == ""  # the item's event_time says it
    assert state["claims"][queued["id"]].split("|")[1] == CloudEvent.model_validate(queued).time_utc
    # When the next event comes, both claims are read back with their times and proven by their history
    consume(consumer, context, [f.message("delivered", seconds=2)], first_sequence=3)
    assert set(stack.states()["message#MM1"]["claims"]) == {stack.states()["message#MM1"]["event_id"]}
    assert [n["status"] for n in stack.notifications()] == ["queued", "sent", "delivered"]


def test_a_failed_claim_check_fails_only_its_entities(stack, consumer, context, fail):
    consume(consumer, context, [f.message("queued", message_id="MM-A")])
    stack.notifications()
    fail("dynamodb", "batch_get_item", times=1, when=lambda call: "ProjectionExpression" in
         call["RequestItems"][stack.table_name])
    batch = kinesis_batch([f.message("sent", message_id="MM-A", seconds=1), f.message("queued", message_id="MM-B")],
                          first_sequence=10)
    response = consumer.lambda_handler(batch, context)
    assert len(failed_sequences(response)) == 1
    assert {pk: s["status"] for pk, s in stack.states().items()} == {"message#MM-A": "queued",
                                                                    "message#MM-B": "queued"}
    assert consumer.lambda_handler(batch, context) == {"batchItemFailures": []}
    assert sorted((n["id"], n["status"]) for n in stack.notifications()) == [("MM-A", "sent"), ("MM-B", "queued")]


def test_a_failed_state_read_fails_only_the_entities_of_that_request(stack, consumer, context, fail):
    # Given 101 entities (two BatchGetItem requests of 100 and 1) and the first read throttled
    events = [f.message("queued", message_id=f"MM{i:03d}") for i in range(101)]
    fail("dynamodb", "batch_get_item", times=1,
         when=lambda call: len(call["RequestItems"][stack.table_name]["Keys"]) == 100)
    batch = kinesis_batch(events)
    response = consumer.lambda_handler(batch, context)
    # Then the 100 entities of that read are retried and the other one is done
    assert len(failed_sequences(response)) == 100
    assert list(stack.states()) == ["message#MM100"]
    assert consumer.lambda_handler(batch, context) == {"batchItemFailures": []}
    assert len(stack.states()) == 101 and len(stack.notifications()) == 101
