"""No field can crash a batch: every field of the envelope and of each family's model, in turn, holds
each JSON type, through both doors (contract 4).

Each family's sample is mutated one field at a time (absent fields are added); each mutated event
gets its own event id and entity id, so none is stale or a duplicate of another. Then, per family:
the Kinesis consumer reports no record for retry and the webhook answers 200 or 400 (never 5xx);
every event is either accepted (one history item each) or a dead letter whose detail names fields,
never the values it was given.
"""

import copy
import itertools
import typing
from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from sink_dev.samples import load_samples
from tests.support import factories as f
from tests.support.sinks import consume, post, without_deadline
from twilio_sink.envelope import CloudEvent
from twilio_sink.registry import FAMILIES, UNMODELLED, family_of, route

SENTINEL = "SENTINEL-7f3a9c"  # a value no detail may repeat
BIG = 2**70
VALUES = [None, True, 0, -1, 1.5, BIG, "", "x", SENTINEL, [], [1], {}, {"a": 1},
          {"a": [{"b": {"c": [SENTINEL, BIG, None]}}]}]
ENVELOPE = ["specversion", "type", "source", "id", "time", "dataschema", "datacontenttype", "data"]
# An event whose account field or `source` was replaced names none of the stack's accounts: it is a
# `foreign_account` dead letter (issue 15), never applied.
REASONS = {"not_cloudevent", "invalid_payload", "foreign_account"}
# Twilio's webhook bodies are at most 64 kB and a Kinesis batch is at most the mapping's batch size.
WEBHOOK_EVENTS_PER_BODY = 25
KINESIS_RECORDS_PER_BATCH = 100
_ids = itertools.count(1)


def model_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every field of a payload model by its wire name, nested models' fields included."""
    for name, field in model.model_fields.items():
        path = (*prefix, field.alias or name)
        yield path
        for candidate in typing.get_args(field.annotation) or (field.annotation,):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                yield from model_paths(candidate, path)


def one_sample_per_family() -> dict[str, dict]:
    samples: dict[str, dict] = {}
    for sample in load_samples():
        samples.setdefault(type(family_of(sample["type"])).__name__, sample)
    samples[type(UNMODELLED).__name__] = f.cloudevent("com.twilio.conversations.message.added",
                                                      {"MessageSid": "IM1", "Body": "hi"})
    return samples


SAMPLES = one_sample_per_family()


def uniquely(sample: dict, entity_id: str, n: int) -> dict:
    """The sample with a fresh event id and, wherever the entity id appears, a fresh entity id."""
    def walk(value):
        if value == entity_id:
            return f"{entity_id}-{n}"
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    event = copy.deepcopy(sample)
    event["data"] = walk(event["data"])
    event["id"] = f"EZ{n:032x}"
    return event


def set_path(event: dict, path: tuple[str, ...], value) -> None:
    target = event["data"]
    for name in path[:-1]:
        if not isinstance(target.get(name), dict):
            target[name] = {}
        target = target[name]
    target[path[-1]] = value


def mutations(family_name: str) -> list[dict]:
    sample = SAMPLES[family_name]
    entity_id = route(CloudEvent.model_validate(sample)).entity_id
    family = UNMODELLED if family_name == type(UNMODELLED).__name__ else family_of(sample["type"])
    events = []
    for field in ENVELOPE:
        for value in VALUES:
            event = uniquely(sample, entity_id, next(_ids))
            event[field] = value
            events.append(event)
    for path in model_paths(family.data_model):
        for value in VALUES:
            event = uniquely(sample, entity_id, next(_ids))
            set_path(event, path, value)
            events.append(event)
    return events


def assert_names_no_value(detail: str) -> None:
    assert SENTINEL not in detail and str(BIG) not in detail, detail


def test_every_family_and_the_catch_all_have_a_sample_to_mutate():
    assert {type(family).__name__ for family in FAMILIES} | {type(UNMODELLED).__name__} == set(SAMPLES)


@pytest.mark.parametrize("family_name", sorted(SAMPLES))
def test_no_field_of_any_type_fails_a_kinesis_batch(stack, consumer, context, family_name):
    events = mutations(family_name)
    # When every mutation arrives, in batches, Then no record is reported for retry
    for first in range(0, len(events), KINESIS_RECORDS_PER_BATCH):
        batch = events[first:first + KINESIS_RECORDS_PER_BATCH]
        assert consume(consumer, context, batch, first_sequence=first + 1) == {"batchItemFailures": []}
    # and each event is accepted (one history item each) or dead-lettered for what it is
    letters = stack.dead_letters()
    history = [item for item in stack.items() if item["sk"] != "state"]
    assert len(history) + len(letters) == len(events)
    for letter in letters:
        assert letter["reason"] in REASONS and letter["source"] == "kinesis"
        assert_names_no_value(letter["detail"])
    assert len(stack.notifications()) == len(stack.states())  # one per entity: each got one event


@pytest.mark.parametrize("family_name", sorted(SAMPLES))
def test_no_field_of_any_type_makes_the_webhook_answer_5xx(stack, webhook, context, family_name, monkeypatch):
    without_deadline(monkeypatch)  # only the input may decide the answer here
    events = mutations(family_name)
    dead_lettered = 0
    for first in range(0, len(events), WEBHOOK_EVENTS_PER_BODY):
        body = events[first:first + WEBHOOK_EVENTS_PER_BODY]
        status, answer = post(webhook, context, body)
        # Then every body is answered 200 or 400 (Twilio retries nothing, and none of it is lost)
        assert status in (200, 400), answer
        assert answer["failed"] == 0
        accepted = answer["applied"] + answer["stale"] + answer["duplicate"]
        assert accepted + answer["dead_lettered"] == len(body)
        assert answer["dead_lettered"] == len(answer.get("problems", []))
        for problem in answer.get("problems", []):
            assert problem["reason"] in REASONS
            assert_names_no_value(problem["detail"])
        dead_lettered += answer["dead_lettered"]
    assert len(stack.dead_letters()) == dead_lettered
