"""The scheduled run: the entities that are due, asked of Twilio, their differences corrected.

A run takes the entities of the Unsettled index that are due (a Query per index shard, longest due
first), asks Twilio for each one's truth (as the account the sink recorded for it), and hands every
status that differs from the stored one to the pipeline as a correction (corrections.py). Entities
whose answer changed nothing are due again after as long as they have been quiet (at least their
family's `quiet_after`): a run never spends its time on the same ones, and the next run continues
with the rest. Work stops before the deadline.
"""

import json
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from .. import aws
from ..config import settings
from ..families.base import Family
from ..observability import MetricUnit, logger, metrics
from ..pipeline import Pipeline, default_pipeline
from ..registry import BY_TYPE
from ..state import DueEntity, unsettled_keys
from ..store import StatusStore
from ..times import iso_utc
from .client import NoApiKey, NotFound, Twilio, Unreachable, parse_api_keys
from .corrections import apply, synthetic_event
from .resources import RESOURCES, Resource, resource_of

PAGE_SIZE = 50
WORKERS = 8  # concurrent Twilio requests: well inside Twilio's per-account concurrency
# Kept free at the end of a run: the last requests' timeout and the pipeline's last publish.
SAFETY_SECONDS = 15.0
SECRET_MAX_AGE_SECONDS = 300  # a rotated API key is used within five minutes


def reconciled_entities() -> list[str]:
    return sorted({resource.family.entity for resource in RESOURCES.values()})


@dataclass
class Check:
    """One entity of the index and what came of asking Twilio."""

    item: DueEntity  # the index's projection of its state item
    family: Family
    resource: Resource
    outcome: str = "unreachable"  # checked | not_found | unreachable (corrections are counted by the pipeline)
    event: dict[str, Any] | None = None  # the synthetic event, when Twilio's status differs
    keyless: str | None = None  # unreachable for want of an API key: the account ("" when none is known)
    account: str | None = None  # the account the sink recorded for the entity: Twilio is asked as it

    @cached_property
    def data(self) -> dict[str, Any]:
        return json.loads(self.item.data)


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
        checks = [Check(item, family, resource) for item in items
                  if (family := BY_TYPE.get(item.event_type)) and (resource := resource_of(family))]
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
        item, data = check.item, check.data
        try:
            truth = check.resource.fetch(self.twilio, item.id, data, check.account, deadline)
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
            check.event = synthetic_event(check.resource, item.id, data, truth)

    def _postpone(self, check: Check) -> None:
        item = check.item
        now = self.now()
        unchanged = now - datetime.fromisoformat(item.updated_at or iso_utc(now))
        wait = max(check.family.quiet_after or timedelta(0), unchanged)
        # A state written meanwhile (the version moved) keeps its own due time.
        self.store.reschedule_check(item.pk, item.version, iso_utc(now + wait))


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
