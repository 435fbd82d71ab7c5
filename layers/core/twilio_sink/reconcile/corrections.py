"""The correction: Twilio's answer as a synthetic CloudEvent of the family, and its way through the pipeline.

The event is the family's own type and payload (resources.py composes them), so precedence,
de-duplication and notifications apply to it unchanged: it never regresses a status that events moved
further, and a correction is published once like any change.
"""

import hashlib
import json
import uuid
from typing import Any, Literal

from ..envelope import to_cloudevent
from ..observability import logger
from ..pipeline import Outcome, Pipeline
from ..received import Received
from ..times import iso_utc
from .resources import Resource, Truth

PIPELINE_RETRIES = 2  # in-run retries of corrections the pipeline could not settle (AWS throttling)


def synthetic_event(resource: Resource, entity_id: str, stored_data: dict[str, Any], truth: Truth) -> dict[str, Any]:
    """The CloudEvent that says what Twilio's REST API says, in the family's own type and payload.

    Its `source` is the REST resource that answered, as an event's `source` names the resource it is
    about (for a 2010-API resource the URL names the account, the one the answer's payload names too).
    The payload is the stored one (a message keeps its `attempt`, so its order key compares within
    the same attempt) with the answer's fields over it, as the resource composes them (`correction`).
    Its id is derived from what it says, so a repeated answer is the same event and the pipeline
    takes it as a duplicate.
    """
    assert truth.status is not None  # callers correct only to a status the family has a word for
    event_type, data = resource.correction(truth.status, stored_data, truth.data)
    # date_updated has whole seconds, and the real event of the same change carries a time within that
    # second: stamped with the second's last microsecond, the answer outranks that event, which then
    # changes (and announces) nothing if it still arrives.
    time = iso_utc(truth.updated.replace(microsecond=999_999))
    entity = resource.family.entity
    digest = hashlib.sha256(f"{entity}#{entity_id}|{truth.status}|{time}".encode()).hexdigest()[:32]
    return {
        "specversion": "1.0",
        "type": event_type,
        "source": truth.url,
        "id": f"RC{digest}",
        "time": time,
        "datacontenttype": "application/json",
        "data": data,
    }


def apply(pipeline: Pipeline, events: list[dict[str, Any]], door: Literal["reconciler", "backfill"],
          remaining_seconds: float | None = None) -> Outcome:
    """Synthetic events through the pipeline, retrying (in this run) what AWS failed transiently.

    Without a deadline: the pipeline stops publishing at one because the webhook's caller retries,
    while nothing redelivers a correction. The run's safety margin covers the pipeline's time.
    `remaining_seconds`: until the invocation's hard timeout, which bounds the claims' lease (None: a
    command run, which nothing stops).
    """
    # One carrier for the batch and its retries: a retry finds its own claims and republishes them.
    batch = uuid.uuid4().hex
    received = [Received(door, json.dumps(event), {"batch": batch}, event=to_cloudevent(event)) for event in events]
    total = Outcome()
    for _ in range(1 + PIPELINE_RETRIES):
        if not received:
            break
        outcome = pipeline.process(received, remaining_seconds)
        total.counts.update(outcome.counts)
        total.dead_letters |= outcome.dead_letters
        # A retried event is a duplicate of its own write: the pipeline republishes its own claim.
        received = [received[index] for index in sorted(outcome.failed)]
    total.failed = set(range(len(received)))
    if received:
        # A state written without its notice published keeps an unpublished claim (docs/operations.md,
        # "Reconciliation and backfill", limits).
        logger.error("corrections not settled after retries",
                     extra={"events": [item.event.id for item in received if item.event]})
    return total
