"""Status queries against the table built from the template: entity history, messages of an operation."""

import boto3

from sink_dev.samples import SAMPLE_ACCOUNT_SID, SAMPLE_SUBACCOUNT_SID
from sink_ops import status
from sink_ops.status import operation, show
from tests.support.factories import message
from tests.support.factories import operation as operation_event
from tests.support.sinks import consume
from twilio_sink.store import StatusStore


def table(stack) -> StatusStore:
    return StatusStore(stack.table_name, boto3.client("dynamodb"))


def test_only_message_state_items_with_an_operation_are_in_the_index(stack, consumer, context):
    response = consume(consumer, context, [
        operation_event("processing", operation_id="OP1"),
        message("queued", message_id="MM1", operation_id="OP1"),
        message("sent", message_id="MM1", seconds=1),  # no operation_id: the message stays in OP1
        message("queued", message_id="MM2", operation_id=""),  # empty: DynamoDB rejects empty key values
        message("queued", message_id="MM3"),
        message("queued", message_id="MM4", operation_id="OP2"),
    ])
    assert response == {"batchItemFailures": []}
    listed = table(stack).of_operation("OP1")
    assert [(m.id, m.status) for m in listed] == [("MM1", "sent")]
    assert [m.id for m in table(stack).of_operation("OP2")] == ["MM4"]
    items = stack.items()
    assert {i["pk"] for i in items if "operation_id" in i} == {"message#MM1", "message#MM4"}
    assert all(i["sk"] == "state" for i in items if "operation_id" in i)  # history stays out of the index


def test_show_and_operation_output(stack, consumer, context):
    consume(consumer, context, [operation_event("scheduled", operation_id="OP1"),
                                message("queued", message_id="MM1", operation_id="OP1"),
                                message("delivered", message_id="MM1", seconds=2, operation_id="OP1")])
    code, text = show(table(stack), "message", "MM1")
    assert code == 0
    assert text.startswith("message MM1: delivered") and "operation OP1" in text
    assert "History (2 events accepted" in text and text.index("queued") < text.rindex("delivered")
    code, text = operation(table(stack), "OP1")
    assert code == 0 and text.startswith("operation OP1: scheduled") and "Messages (1: 1 delivered)" in text
    assert operation(table(stack), "OP9")[0] == 1
    assert show(table(stack), "brand", "BN9") == (1, "no brand BN9 in the table (pk 'brand#BN9')")


def test_states_list_and_count_by_account(stack, consumer, context, capsys):
    # Given events of two accounts (one named in the payload, one in the envelope's source)
    first, second = SAMPLE_ACCOUNT_SID, SAMPLE_SUBACCOUNT_SID  # the accounts the local stack accepts
    consume(consumer, context, [
        message("queued", message_id="MM1", account_sid=first),
        message("sent", message_id="MM2") | {"source": f"/2010-04-01/Accounts/{second}/Messages/MM2.json"},
        operation_event("scheduled", operation_id="OP1"),
    ])
    # When listed by account, Then each account sees only its entities
    assert sorted(s.winner.id for s in table(stack).states(account=first)) == ["MM1", "OP1"]  # OP1: the factory's source
    assert [s.winner.id for s in table(stack).states(entity="message", account=second)] == ["MM2"]
    assert table(stack).states(account="AC" + "9" * 32) == []
    # and the command prints them, and a per-account count
    assert status.main(["--table", stack.table_name, "list", "--account", second]) == 0
    out = capsys.readouterr().out
    assert "Status table (1 entities)" in out and "MM2" in out and "MM1" not in out
    assert status.main(["--table", stack.table_name, "accounts"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith(first) and "1 message queued" in line for line in lines)
    assert any(line.startswith(first) and "1 operation scheduled" in line for line in lines)  # the factory's source


def test_show_names_the_account_and_every_familys_entity_is_accepted(stack, consumer, context, capsys):
    consume(consumer, context, [message("queued", message_id="MM1", account_sid=SAMPLE_ACCOUNT_SID)])
    assert "  account " + SAMPLE_ACCOUNT_SID in show(table(stack), "message", "MM1")[1]
    assert {"call", "flow_execution", "verification", "tollfree_verification", "event"} <= set(status.ENTITIES)
    assert status.main(["--table", stack.table_name, "show", "call", "CA404"]) == 1
