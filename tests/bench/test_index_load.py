"""The index write counting behind docs/performance.md's capacity plan, by DynamoDB's documented rules."""

from sink_bench.index_load import index_writes, indexes


def item(**attributes) -> dict:
    return {"pk": {"S": "message#SM1"}, "sk": {"S": "state"}} | {name: {"S": value} for name, value in attributes.items()}


KEYS, PROJECTED = ["unsettled", "check_after"], ["unsettled", "check_after", "pk", "sk", "status"]


def test_an_item_outside_the_index_costs_it_nothing():
    assert index_writes(KEYS, PROJECTED, None, item(status="sent")) == []


def test_entering_staying_and_leaving_the_index_cost_one_write_each():
    inside = item(unsettled="message#3", check_after="t1", status="queued")
    assert index_writes(KEYS, PROJECTED, None, inside) == [("message#3", 1)]
    assert index_writes(KEYS, PROJECTED, inside, inside | {"status": {"S": "sent"}}) == [("message#3", 1)]
    assert index_writes(KEYS, PROJECTED, inside, item(status="delivered")) == [("message#3", 1)]


def test_a_changed_index_key_costs_a_delete_and_a_put():
    before = item(unsettled="message#3", check_after="t1", status="queued")
    after = item(unsettled="message#3", check_after="t2", status="sent")
    assert index_writes(KEYS, PROJECTED, before, after) == [("message#3", 1), ("message#3", 1)]


def test_the_indexes_are_read_from_the_template():
    found = indexes()
    assert found["ByOperation"][0] == ["operation_id", "pk"]
    assert found["Unsettled"][0] == ["unsettled", "check_after"] and "data" in found["Unsettled"][1]
