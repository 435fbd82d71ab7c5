"""The core both entry points share: route → apply per entity → notify → dead-letter.

Events are grouped per entity in arrival order. A batch then runs in phases, each phase's requests
concurrently: read every entity's state (`BatchGetItem`, 100 per request) while the history is
written (`BatchWriteItem`, 25 per request); one conditional write per entity, whatever its number
of events; the applied changes published, packed across entities ten per `PublishBatch` (each
entity's in order); the published entries cleared from the outboxes, 100 entities per
`TransactWriteItems`. An AWS failure fails only the items it touched, which the caller reports for
retry; retries are safe because every step is idempotent (duplicates are recognised by their
order key, and a redelivered event republishes its own pending notification).
"""

import json
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from typing import Any

from botocore.exceptions import ClientError

from . import aws
from .config import settings
from .dead_letters import DeadLetter, DeadLetterQueue
from .envelope import Poison, PoisonReason, now_utc
from .inbound import Received
from .lifecycle import Change, Current, Notification, OutboxEntry, Plan, plan
from .notify import Notifier
from .observability import MetricUnit, is_metrics_disabled, logger, metrics, single_metric
from .registry import BY_TYPE, route
from .store import (
    BATCH_GET_LIMIT,
    BATCH_WRITE_LIMIT,
    TRANSACT_WRITE_LIMIT,
    Conflict,
    ItemTooLarge,
    StatusStore,
    chunks,
    history_key,
)

MAX_CONFLICT_RETRIES = 5
# Threads for I/O: the requests of a phase wait on the network together (the CPU work holds the GIL
# anyway, so more threads would not add throughput on Lambda's one or two vCPUs).
WORKERS = 32

Members = list[tuple[int, Change]]  # (index in the received list, change), in arrival order


@dataclass
class Outcome:
    """What happened to a list of received items."""

    failed: set[int] = field(default_factory=set)  # indexes to retry (transient AWS failures)
    dead_letters: dict[int, DeadLetter] = field(default_factory=dict)  # index -> letter (sent or not)
    counts: Counter = field(default_factory=Counter)  # applied / stale / duplicate / published

    def summary(self) -> dict[str, int]:
        return {
            "applied": self.counts["applied"],
            "stale": self.counts["stale"],
            "duplicate": self.counts["duplicate"],
            "dead_lettered": len(self.dead_letters),
            "failed": len(self.failed),
        }


@dataclass
class EntityResult:
    plan: Plan | None = None
    to_publish: list[Notification] = field(default_factory=list)  # in order: pending republished, then fresh
    error: str | None = None  # transient: the entity's records are retried
    poison: Poison | None = None  # permanent: the entity's events become dead letters


class Pipeline:
    def __init__(self, store: StatusStore, notifier: Notifier, dead_letters: DeadLetterQueue):
        self.store = store
        self.notifier = notifier
        self.dead_letters = dead_letters
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="pipeline")

    def process(self, received: list[Received], deadline: float | None = None) -> Outcome:
        """`deadline` (a time.monotonic() value): once passed, nothing more is published."""
        outcome = Outcome()
        groups: dict[str, Members] = defaultdict(list)
        for index, item in enumerate(received):
            try:
                change = replace(route(item.cloudevent()), delivery=item.delivery)
            except Poison as poison:
                outcome.dead_letters[index] = _dead_letter(item, poison)
            else:
                groups[change.pk].append((index, change))

        letters = self._pool.submit(self._send_dead_letters, outcome.dead_letters)
        history = self._pool.map(self._write_history, _history_batches(received, groups))
        states = self._pool.map(self._load_states, chunks(sorted(groups), BATCH_GET_LIMIT))
        readable = {pk: stored for found in states for pk, stored in found.items()}
        unread = groups.keys() - readable.keys()
        outcome.failed |= {index for pk in unread for index, _ in groups[pk]}

        pks = [pk for pk in groups if pk in readable]
        results = dict(zip(pks, self._pool.map(lambda pk: self._write_state(pk, groups[pk], readable[pk][0]), pks)))
        if deadline is not None and time.monotonic() >= deadline:
            # The caller has answered "retry": the outboxes keep these notices for the retry to
            # publish, rather than racing it to publish them twice.
            for result in results.values():
                if not result.error and result.to_publish:
                    result.error = "deadline passed before publishing"
        delivered = self.notifier.publish_streams(
            {pk: result.to_publish for pk, result in results.items() if not result.error}, run=self._pool.map)
        for pk, error in delivered.errors.items():
            _log_aws_failure("publish notifications", error, len(results[pk].to_publish))
        self._clear_pending({pk: keys for pk, keys in delivered.published.items() if keys})

        unstorable = {index: _dead_letter(received[index], result.poison)
                      for pk, result in results.items() if result.poison for index, _ in groups[pk]}
        if unstorable:
            outcome.dead_letters |= unstorable
            outcome.failed |= self._send_dead_letters(unstorable)
        for pk, result in results.items():
            if result.poison:
                continue
            published = len(delivered.published.get(pk, []))
            if not result.error and published < len(result.to_publish):
                result.error = f"{len(result.to_publish) - published} notifications not published"
            if result.error:
                logger.warning("entity not settled, will be retried", extra={"pk": pk, "error": result.error})
                outcome.failed |= {index for index, _ in groups[pk]}
            if result.plan:
                outcome.counts["applied"] += len(result.plan.applied)
                outcome.counts["stale"] += len(result.plan.stale)
                outcome.counts["duplicate"] += len(result.plan.duplicates)
            outcome.counts["published"] += published
        for failed in history:
            outcome.failed |= failed
        outcome.failed |= letters.result()
        _emit_metrics(received, outcome)
        return outcome

    def _load_states(self, pks: list[str]) -> dict[str, tuple[dict[str, Any] | None]]:
        """pk -> (stored state or None) for the pks read; none of them if the read failed."""
        try:
            found = self.store.load_states(pks)
        except aws.AWS_ERRORS as error:
            _log_aws_failure("load states", error, len(pks))
            return {}
        return {pk: (found.get(pk),) for pk in pks}

    def _write_state(self, pk: str, members: Members, stored: dict[str, Any] | None) -> EntityResult:
        """Apply one entity's events in one conditional write; say what must be published."""
        changes = [change for _, change in members]
        result = EntityResult()
        try:
            for _ in range(MAX_CONFLICT_RETRIES):
                current = _current(stored)
                result.plan = plan(current, changes)
                fresh = result.plan.notifications()
                winner = result.plan.winner
                if winner is None:
                    break
                try:
                    self.store.save_state(
                        pk,
                        _state_attributes(winner, changes),
                        winner.order_key,
                        current.version if current else None,
                        {n.key: asdict(OutboxEntry(n.body, change.delivery))
                         for n, (change, _) in zip(fresh, result.plan.applied, strict=True)},
                    )
                    break
                except Conflict as conflict:
                    # Another invocation wrote this entity since we read it: plan again on its state.
                    stored = conflict.current
            else:
                result.error = "conflict retries exhausted"
                return result
        except ItemTooLarge:
            # Retrying the same batch would group the same events again: dead-letter them (replay
            # sends each letter alone) rather than block the entity's records until they expire.
            result.poison = Poison(PoisonReason.OVERSIZED,
                                   "the entity's state with this batch's changes exceeds DynamoDB's 400 KB item limit")
            return result
        except aws.AWS_ERRORS as error:
            _log_aws_failure("write state", error, 1)
            result.error = type(error).__name__
            return result
        result.to_publish = result.plan.republish + fresh
        return result

    def _clear_pending(self, published: dict[str, list[str]]) -> None:
        # Published is what matters: an entry left behind only risks one repeated notification if
        # that event is ever redelivered, while failing here would make the redelivery certain.
        for left in self._pool.map(self._clear_group, chunks(list(published.items()), TRANSACT_WRITE_LIMIT)):
            if left:
                logger.warning("published notifications left in the outbox", extra={"entities": len(left)})

    def _clear_group(self, group: list[tuple[str, list[str]]]) -> set[str]:
        try:
            return self.store.clear_pending(dict(group))
        except aws.AWS_ERRORS as error:
            _log_aws_failure("clear published notifications", error, len(group))
            return {pk for pk, _ in group}

    def _write_history(self, batch: list[tuple[dict[str, Any], set[int]]]) -> set[int]:
        try:
            self.store.put_history([item for item, _ in batch])
        except aws.AWS_ERRORS as error:
            _log_aws_failure("write history", error, len(batch))
            return {index for _, indexes in batch for index in indexes}
        return set()

    def _send_dead_letters(self, letters: dict[int, DeadLetter]) -> set[int]:
        if not letters:
            return set()
        indexes = list(letters)
        for index in indexes:
            letter = letters[index]
            logger.warning(
                "dead letter",
                extra={"reason": letter.reason, "detail": letter.detail, "correlation_id": letter.event_id},
            )
        try:
            sent = self.dead_letters.send([letters[i] for i in indexes])
        except aws.AWS_ERRORS as error:
            _log_aws_failure("send dead letters", error, len(indexes))
            sent = set()
        return {index for position, index in enumerate(indexes) if position not in sent}


def _history_batches(received: list[Received], groups: dict[str, Members]) -> list[list[tuple[dict[str, Any], set[int]]]]:
    """History items, one per distinct event (a repeat in the batch is the same item), 25 per request."""
    received_at = now_utc()
    items: dict[tuple[str, str], tuple[dict[str, Any], set[int]]] = {}
    for members in groups.values():
        for index, change in members:
            item = _history_item(change, received[index].source, received_at)
            items.setdefault(history_key(item), (item, set()))[1].add(index)
    return list(chunks(list(items.values()), BATCH_WRITE_LIMIT))


def _current(stored: dict[str, Any] | None) -> Current | None:
    if stored is None:
        return None
    outbox = stored.get("pending") or {}
    return Current(
        status=stored["status"],
        order_key=stored["order_key"],
        version=int(stored["version"]),
        pending={key: OutboxEntry(**entry) for key, entry in outbox.items()},
    )


def _event_attributes(change: Change) -> dict[str, Any]:
    event = change.event
    return {
        "entity": change.entity,
        "id": change.entity_id,
        "status": change.status,
        "event_type": event.type,
        "event_id": event.id,
        "event_time": event.time_utc,
        "data": json.dumps(event.data, separators=(",", ":"), ensure_ascii=False),
    }


def _state_attributes(winner: Change, changes: list[Change]) -> dict[str, Any]:
    # Index attributes from any event of the group: the winning status event may lack them.
    indexed = {name: value for change in changes for name, value in change.indexed.items()}
    return _event_attributes(winner) | indexed | {"updated_at": now_utc()}


def _history_item(change: Change, source: str, received_at: str) -> dict[str, Any]:
    return _event_attributes(change) | {
        "pk": change.pk,
        "sk": f"event#{change.event.time_utc}#{change.event.id}",
        "order_key": change.order_key,
        "source": source,
        "received_at": received_at,
    }


def _dead_letter(item: Received, poison: Poison) -> DeadLetter:
    event = item.event
    return DeadLetter.build(
        item.raw,
        reason=poison.reason,
        detail=poison.detail,
        source=item.source,
        received_at=now_utc(),
        event_id=event.id if event else None,
        event_type=event.type if event else None,
        origin=item.origin,
    )


def _log_aws_failure(step: str, error: BaseException, items: int) -> None:
    code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None
    logger.warning("AWS call failed; items will be retried",
                   extra={"step": step, "error": type(error).__name__, "code": code, "items": items})


def _emit_metrics(received: list[Received], outcome: Outcome) -> None:
    for name, value in (
        ("EventsReceived", len(received)),
        ("EventsApplied", outcome.counts["applied"]),
        ("EventsStale", outcome.counts["stale"]),
        ("EventsDuplicate", outcome.counts["duplicate"]),
        ("NotificationsPublished", outcome.counts["published"]),
        ("DeadLetters", len(outcome.dead_letters)),
        ("RetriableFailures", len(outcome.failed)),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    # single_metric prints even when metrics are disabled (local runs): honour the switch here.
    if is_metrics_disabled():
        return
    # Only known types become dimensions: an arbitrary `type` must not mint new metrics.
    by_type = Counter(item.event.type for item in received if item.event is not None and item.event.type in BY_TYPE)
    for event_type, count in by_type.items():
        with single_metric(name="EventsByType", unit=MetricUnit.Count, value=count,
                           default_dimensions=metrics.default_dimensions) as metric:
            metric.add_dimension(name="event_type", value=event_type)


@cache
def default_pipeline() -> Pipeline:
    config = settings()
    return Pipeline(
        StatusStore(config.table_name, aws.client("dynamodb")),
        Notifier(config.topic_arn, aws.client("sns")),
        DeadLetterQueue(config.dead_letter_queue_url, aws.client("sqs")),
    )
