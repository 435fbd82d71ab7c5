"""The hand-written oracle (events/samples/expected.json) and contract-2 checks on state items."""

import json
import re
import time
from collections import Counter
from functools import cache
from pathlib import Path

EXPECTED = Path(__file__).resolve().parents[2] / "events" / "samples" / "expected.json"
ISO_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


@cache
def _oracle() -> dict:
    return json.loads(EXPECTED.read_text())


def sample_key(sample: dict) -> str:
    return sample["data"]["test_id"] if sample["type"] == "com.twilio.eventstreams.test-event" else sample["id"]


def expected_per_event(sample: dict) -> dict:
    return _oracle()["per_event"][sample_key(sample)]


def expected_final() -> list[dict]:
    return _oracle()["final"]


def assert_contract_state(state: dict, sample: dict, expected: dict) -> None:
    """The state item of contract 2 for an entity whose winning event is `sample`."""
    assert state["pk"] == f"{expected['entity']}#{expected['id']}"
    assert state["sk"] == "state"
    assert state["entity"] == expected["entity"]
    assert state["id"] == expected["id"]
    assert state["status"] == expected["status"]
    assert state["event_type"] == sample["type"]
    assert state["event_id"] == sample["id"]
    assert ISO_UTC.fullmatch(state["event_time"]) and state["event_time"][:19] == sample["time"][:19]
    assert ISO_UTC.fullmatch(state["updated_at"])
    assert json.loads(state["data"]) == sample["data"]


def assert_expires_after_retention(history_item: dict, stack) -> None:
    """A history item expires `HistoryRetentionDays` (the stack's, as the functions have it) after it was written."""
    days = int(stack.env["HISTORY_RETENTION_DAYS"])
    assert days > 0, "the stack keeps history forever: nothing to check"
    assert abs(int(history_item["expires_at"]) - (time.time() + days * 86_400)) < 600, history_item


def unpublished_claims(stack) -> dict[str, set[str]]:
    """pk -> event ids of the state item's claims not known published (no history item for the event yet).

    A claim is an applied change; its event's history item is written only after the notification
    was published, so a claim without one is a change that may never have reached subscribers.
    """
    items = stack.items()
    history = {(item["pk"], item["sk"]) for item in items if item["sk"] != "state"}
    # A claim's time is left out when it is the state item's own event_time (contract 2's claims).
    return {item["pk"]: {event_id for event_id, claim in item.get("claims", {}).items()
                         if (item["pk"], f"event#{claim.split('|')[1] or item['event_time']}#{event_id}") not in history}
            for item in items if item["sk"] == "state"}


def unpublished(stack) -> set[str]:
    """Every unpublished claim's event id, across entities."""
    return {event_id for ids in unpublished_claims(stack).values() for event_id in ids}


def emitted(capsys) -> list[dict]:
    """The CloudWatch EMF lines printed so far (and consumed from capsys)."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]


def metric_totals(records: list[dict], name: str) -> Counter:
    """{dimension name: value} (as a sorted tuple) -> the sum of metric `name`'s values in EMF `records`,
    for every dimension set each record declares: what CloudWatch would hold for each metric."""
    totals: Counter = Counter()
    for record in records:
        for directive in record["_aws"]["CloudWatchMetrics"]:
            if name not in {metric["Name"] for metric in directive["Metrics"]}:
                continue
            values = record[name] if isinstance(record[name], list) else [record[name]]
            for dimensions in directive["Dimensions"]:
                totals[tuple(sorted((dimension, record[dimension]) for dimension in dimensions))] += sum(values)
    return totals
