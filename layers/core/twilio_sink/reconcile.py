"""Reconciliation: what Twilio's REST API says about entities whose events stopped coming.

Twilio can lose events for good (error 91303; retries end after 4 hours; `queued` is often never
sent). A scheduled run takes the entities of the Unsettled index that are due (a Query per index
shard, longest due first), asks Twilio for each one's truth (as the account the sink recorded for
it), and hands every status that differs
from the stored one to the same pipeline as the sinks, as a synthetic CloudEvent (source
`reconciler`, time = Twilio's date_updated): precedence, de-duplication and notifications apply
unchanged, so an answer never regresses a status that events moved further, and a correction is
published once like any change. Entities whose answer changed nothing are due again after as long
as they have been unchanged (at least their family's threshold): a run never spends its time on the
same ones, and the next run continues with the rest. Work stops before the deadline.
"""

import hashlib
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Literal

from . import aws
from .config import settings
from .envelope import to_cloudevent
from .families.base import Family
from .families.brands import Brands
from .families.calls import Calls
from .families.campaigns import Campaigns
from .families.message_status import MessageStatuses
from .families.messages import Messages
from .families.tollfree import TollFreeVerifications
from .observability import MetricUnit, logger, metrics
from .pipeline import Outcome, Pipeline, default_pipeline
from .precedence import Change, plan
from .received import Received
from .registry import BY_TYPE, FAMILIES, family_of, route
from .state import DueEntity, unsettled_keys
from .store import StatusStore
from .times import iso_utc
from .twilio_rest import (
    BrandResource,
    CallResource,
    CampaignResource,
    MessageResource,
    MessageStatusResource,
    NoApiKey,
    NotFound,
    Resource,
    TollFreeResource,
    Truth,
    Twilio,
    Unreachable,
    list_calls,
    list_messages,
    parse_api_keys,
)

SOURCE = "reconciler"
PAGE_SIZE = 50
WORKERS = 8  # concurrent Twilio requests: well inside Twilio's per-account concurrency
PIPELINE_RETRIES = 2  # in-run retries of corrections the pipeline could not settle (AWS throttling)
# Kept free at the end of a run: the last requests' timeout and the pipeline's last publish.
SAFETY_SECONDS = 15.0
SECRET_MAX_AGE_SECONDS = 300  # a rotated API key is used within five minutes

# What each reconcilable family asks Twilio; a family with a `stale_after` needs an entry here
# (tests/reconcile/test_template.py). Adding one is a Resource in twilio_rest.py and one line here.
RESOURCES: dict[type[Family], Resource] = {
    Messages: MessageResource(),
    MessageStatuses: MessageStatusResource(),
    Brands: BrandResource(),
    Campaigns: CampaignResource(),
    TollFreeVerifications: TollFreeResource(),
    Calls: CallResource(),
}


def reconciled_entities() -> list[str]:
    return sorted({family.entity for family in FAMILIES if family.stale_after is not None})


@dataclass
class Check:
    """One entity of the index and what came of asking Twilio."""

    item: DueEntity  # the index's projection of its state item
    family: Family
    outcome: str = "unreachable"  # checked | not_found | unreachable (corrections are counted by the pipeline)
    event: dict[str, Any] | None = None  # the synthetic event, when Twilio's status differs
    keyless: str | None = None  # unreachable for want of an API key: the account ("" when none is known)
    account: str | None = None  # the account the sink recorded for the entity: Twilio is asked as it

    @cached_property
    def data(self) -> dict[str, Any]:
        return json.loads(self.item.data)


def synthetic_event(family: Family, entity_id: str, stored_data: dict[str, Any], truth: Truth) -> dict[str, Any]:
    """The CloudEvent that says what Twilio's REST API says, in the family's own type and payload.

    The payload is the stored one (a message keeps its `attempt`, so its order key compares within
    the same attempt) with the answer's fields over it, as the family composes them (`correction`).
    Its id is derived from what it says, so a repeated answer is the same event and the pipeline
    takes it as a duplicate.
    """
    assert truth.status is not None  # callers correct only to a status the family has a word for
    event_type, data = family.correction(truth.status, stored_data, truth.data)
    # date_updated has whole seconds, and the real event of the same change carries a time within that
    # second: stamped with the second's last microsecond, the answer outranks that event, which then
    # changes (and announces) nothing if it still arrives.
    time = iso_utc(truth.updated.replace(microsecond=999_999))
    digest = hashlib.sha256(f"{family.entity}#{entity_id}|{truth.status}|{time}".encode()).hexdigest()[:32]
    return {
        "specversion": "1.0",
        "type": event_type,
        "source": SOURCE,
        "id": f"RC{digest}",
        "time": time,
        "datacontenttype": "application/json",
        "data": data,
    }


class Reconciler:
    def __init__(self, store: StatusStore, pipeline: Pipeline, twilio: Twilio, now=lambda: datetime.now(UTC),
                 rng: random.Random | None = None):
        self.store = store
        self.pipeline = pipeline
        self.twilio = twilio
        self.now = now
        self.rng = rng or random.Random()

    def run(self, deadline: float, clock=time.monotonic) -> Counter:
        """Check due entities until none is left or `deadline` (a time.monotonic() value) nears."""
        counts: Counter = Counter()
        keyless: Counter = Counter()
        due_by = iso_utc(self.now())
        # One page per index shard in turn, from a different shard each run: every entity kind and
        # shard gets its share even of runs that end at their deadline.
        keys = [key for entity in reconciled_entities() for key in unsettled_keys(entity)]
        first = self.rng.randrange(len(keys))
        cursors: dict[str, dict | None] = dict.fromkeys(keys[first:] + keys[:first])
        stop = deadline - SAFETY_SECONDS
        with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="reconcile") as pool:
            while cursors and clock() < stop:
                for key in list(cursors):
                    if clock() >= stop:
                        break
                    items, cursors[key] = self.store.unsettled(key, due_by, PAGE_SIZE, cursors[key])
                    if items:
                        # Twilio's client keeps time with time.monotonic(); the pipeline's claims hold
                        # until the invocation's own end, nothing of which runs later.
                        self._check_page(pool, items, time.monotonic() + max(0.0, stop - clock()), counts, keyless,
                                         remaining_seconds=max(0.0, deadline - clock()))
                    if cursors[key] is None:
                        del cursors[key]
        for account, entities in sorted(keyless.items()):
            # Once per run and account, not per entity: one line says what to add (docs/operations.md).
            logger.warning("no API key for an account in TwilioApiKeysSecret: its entities were not checked",
                           extra={"account_sid": account or "(unknown)", "entities": entities})
        if cursors:
            logger.info("reconciliation stopped at its deadline; the next run continues", extra=dict(counts))
        return counts

    def _check_page(self, pool: ThreadPoolExecutor, items: list[DueEntity], deadline: float,
                    counts: Counter, keyless: Counter, remaining_seconds: float) -> None:
        # Only families with a Resource put items in the index (tests/reconcile/test_template.py); an
        # item of a family since removed is left alone rather than failing the run.
        checks = [Check(item, family) for item in items
                  if (family := BY_TYPE.get(item.event_type)) and type(family) in RESOURCES]
        self._find_accounts(checks)
        list(pool.map(lambda check: self._ask(check, deadline), checks))
        corrections = [check.event for check in checks if check.event]
        counts["corrected"] += apply(self.pipeline, corrections, "reconciler", remaining_seconds).counts["applied"]
        for check in checks:
            counts[check.outcome] += 1
            if check.keyless is not None:
                keyless[check.keyless] += 1
            if check.outcome in ("checked", "not_found"):
                self._postpone(check)

    def _find_accounts(self, checks: list[Check]) -> None:
        """The account the sink recorded for each entity (the state's `account_sid`).

        It is the first Account SID of the event that wrote the state: its payload's account field when
        it has one, so the stored payload names the same one; else the event's `source`, recorded on the
        state only, read from the table for those entities (the Unsettled index does not project it:
        an existing index's projection cannot be changed in place, docs/operations.md).
        """
        for check in checks:
            check.account = check.family.payload_account(check.data)
        unnamed = [check.item.pk for check in checks if check.account is None]
        if unnamed:
            recorded = self.store.recorded_accounts(unnamed)
            for check in checks:
                check.account = check.account or recorded.get(check.item.pk)

    def _ask(self, check: Check, deadline: float) -> None:
        item, family, data = check.item, check.family, check.data
        try:
            truth = RESOURCES[type(family)].fetch(self.twilio, item.id, data, check.account, deadline)
        except NotFound:
            check.outcome = "not_found"
            return
        except NoApiKey as error:
            check.keyless = error.account_sid or ""
            return
        except Unreachable as error:
            logger.warning("Twilio not reachable for an entity", extra={"pk": item.pk, "error": str(error)})
            return
        check.outcome = "checked"
        if truth.status and truth.status != item.status:
            check.event = synthetic_event(family, item.id, data, truth)

    def _postpone(self, check: Check) -> None:
        item = check.item
        now = self.now()
        unchanged = now - datetime.fromisoformat(item.updated_at or iso_utc(now))
        wait = max(check.family.stale_after or timedelta(0), unchanged)
        # A state written meanwhile (the version moved) keeps its own due time.
        self.store.reschedule_check(item.pk, item.version, iso_utc(now + wait))


def apply(pipeline: Pipeline, events: list[dict[str, Any]], source: Literal["reconciler", "backfill"],
          remaining_seconds: float | None = None) -> Outcome:
    """Synthetic events through the pipeline, retrying (in this run) what AWS failed transiently.

    Without a deadline: the pipeline stops publishing at one because the webhook's caller retries,
    while nothing redelivers a correction. The run's safety margin covers the pipeline's time.
    `remaining_seconds`: until the invocation's hard timeout, which bounds the claims' lease (None: a
    command run, which nothing stops).
    """
    # One carrier for the batch and its retries: a retry finds its own claims and republishes them.
    batch = uuid.uuid4().hex
    received = [Received(source, json.dumps(event), {"batch": batch}, event=to_cloudevent(event)) for event in events]
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


def preview(store: StatusStore, events: list[dict[str, Any]]) -> list[tuple[Change, str | None]]:
    """What applying `events` would change, against the stored states, writing nothing (a dry run)."""
    changes: dict[str, list[Change]] = {}
    for event in events:
        change = replace(route(to_cloudevent(event)), corrects=True)
        changes.setdefault(change.pk, []).append(change)
    stored = store.load_states(changes)
    return [applied for pk, group in changes.items() for applied in plan(stored.get(pk), group).applied]


@dataclass(frozen=True)
class Listing:
    """What backfill lists for one entity: Twilio's listing, and the family and payload of an entity
    the sink never heard of."""

    pages: Callable[[Twilio, str, datetime, datetime, float], Iterator[list[Any]]]
    family: Family
    payload: Callable[[str, str], dict[str, Any]]  # (sid, account) -> the new entity's stored payload

    @property
    def entity(self) -> str:
        return self.family.entity


LISTINGS = (
    Listing(list_messages, Messages(), lambda sid, account: {"message_id": sid, "account_sid": account}),
    Listing(list_calls, Calls(), lambda sid, account: {"sid": sid}),
)


def backfill_window(twilio: Twilio, store: StatusStore, listing: Listing, account_sid: str, since: datetime,
                    until: datetime, deadline: float) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """Every entity of the listing in [since, until): its pk, and the synthetic event that brings it
    to Twilio's status when the stored one differs or the sink never heard of it (else None).
    """
    for page in listing.pages(twilio, account_sid, since, until, deadline):
        stored = store.load_states([f"{listing.entity}#{answer.sid}" for answer in page])
        for answer in page:
            pk = f"{listing.entity}#{answer.sid}"
            state = stored.get(pk)
            # An entity keeps the family (and payload) that wrote it; one the sink never heard of takes the listing's.
            family = family_of(state.winner.event_type) if state else listing.family
            resource = RESOURCES.get(type(family))
            # None: a family with nothing to reconcile (an inbound message is `received` from its first event).
            truth = resource.truth(answer) if resource else None
            if not truth or not truth.status or (state and state.status == truth.status):
                yield pk, None
                continue
            data = json.loads(state.winner.data) if state else listing.payload(answer.sid, account_sid)
            yield pk, synthetic_event(family, answer.sid, data, truth)


def _emit_metrics(counts: Counter) -> None:
    for name, key in (("ReconcilerChecked", "checked"), ("ReconcilerCorrections", "corrected"),
                      ("ReconcilerNotFound", "not_found"), ("ReconcilerUnreachable", "unreachable")):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=counts[key])


def run_scheduled(remaining_millis: int) -> dict[str, int]:
    """One scheduled run on the deployed stack, with the API keys as the secret holds them now."""
    value = aws.secrets().get(settings().twilio_api_keys_secret_arn, max_age=SECRET_MAX_AGE_SECONDS)
    keys = parse_api_keys(value.decode("utf-8") if isinstance(value, bytes) else str(value))
    pipeline = default_pipeline()
    twilio = Twilio(keys, base_url=settings().twilio_api_base_url)
    counts = Reconciler(pipeline.store, pipeline, twilio).run(time.monotonic() + remaining_millis / 1000)
    _emit_metrics(counts)
    return {name: counts[name] for name in ("checked", "corrected", "not_found", "unreachable")}
