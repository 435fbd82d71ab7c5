"""The batch-wide requests against moto: shared outbox clean-up, per-request failures stay local."""

from tests.support import factories as f
from tests.support.sinks import consume, failed_sequences, kinesis_batch


def cancel_first_transaction(reasons):
    """Make the next TransactWriteItems fail the way DynamoDB cancels one (per-action reasons)."""
    from twilio_sink import aws

    client = aws.client("dynamodb")
    real = client.transact_write_items
    calls = []

    def transact(**kwargs):
        calls.append(kwargs["TransactItems"])
        if len(calls) == 1:
            raise client.exceptions.TransactionCanceledException(
                {"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                 "CancellationReasons": [{"Code": code} for code in reasons]}, "TransactWriteItems")
        return real(**kwargs)

    client.transact_write_items = transact
    return calls


def test_one_transaction_clears_the_outboxes_of_every_entity_of_the_batch(stack, consumer, context):
    consume(consumer, context, [f.message("queued", message_id=f"MM{i}") for i in range(5)])
    states = stack.states()
    assert len(states) == 5 and all(state["pending"] == {} for state in states.values())
    assert len(stack.notifications()) == 5


def test_an_entity_refused_by_the_clean_up_keeps_its_entry_and_the_others_are_cleared(stack, consumer, context):
    # Given the clean-up transaction is cancelled because of the second entity (a concurrent write)
    calls = cancel_first_transaction(["None", "TransactionConflict", "None"])
    # When three entities are applied and published
    response = consume(consumer, context, [f.message("queued", message_id=f"MM{i}") for i in range(3)])
    # Then nothing is retried, each change was published once, and only the refused outbox keeps its entry
    assert response == {"batchItemFailures": []}
    assert sorted(n["id"] for n in stack.notifications()) == ["MM0", "MM1", "MM2"]
    assert [len(call) for call in calls] == [3, 2]
    refused = calls[0][1]["Update"]["Key"]["pk"]["S"]
    assert {pk: len(state["pending"]) for pk, state in stack.states().items()} == {
        f"message#MM{i}": int(f"message#MM{i}" == refused) for i in range(3)}


def test_a_clean_up_cancelled_without_reasons_is_logged_and_retries_nothing(stack, consumer, context):
    cancel_first_transaction([])
    response = consume(consumer, context, [f.message("queued")])
    assert response == {"batchItemFailures": []}
    assert [n["status"] for n in stack.notifications()] == ["queued"]
    assert len(stack.states()["message#MM1"]["pending"]) == 1  # left behind: only a redelivery would republish


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
