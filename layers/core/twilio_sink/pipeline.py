"""The core both entry points share: route → apply per entity → notify → dead-letter.

Events are grouped per entity in arrival order. Each group costs one conditional write (whatever
its size), its applied changes are published in order, and different entities run concurrently.
An AWS failure fails only the items it touched, which the caller reports for retry; retries are
safe because every step is idempotent (duplicates are recognised by their order key).
"""

import json
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from botocore.exceptions import ClientError

from . import aws
from .config import settings
from .dead_letters import DeadLetter, DeadLetterQueue
from .envelope import Poison, now_utc
from .inbound import Received
from .lifecycle import Change, Current, Plan, plan
from .notify import Notifier
from .observability import MetricUnit, is_metrics_disabled, logger, metrics, single_metric
from .registry import BY_TYPE, route
from .store import Conflict, StatusStore

MAX_CONFLICT_RETRIES = 5
WORKERS = 32


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
    published: int = 0
    error: str | None = None


class Pipeline:
    def __init__(self, store: StatusStore, notifier: Notifier, dead_letters: DeadLetterQueue):
        self.store = store
        self.notifier = notifier
        self.dead_letters = dead_letters
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="pipeline")

    def process(self, received: list[Received]) -> Outcome:
        outcome = Outcome()
        groups: dict[str, list[tuple[int, Change]]] = defaultdict(list)
        for index, item in enumerate(received):
            try:
                if item.poison:
                    raise item.poison
                change = replace(route(item.event), delivery=item.delivery)
            except Poison as poison:
                outcome.dead_letters[index] = _dead_letter(item, poison)
            else:
                groups[change.pk].append((index, change))

        letters = self._pool.submit(self._send_dead_letters, outcome.dead_letters)
        history = self._pool.submit(self._write_history, received, groups)
        try:
            states = self.store.load_states(groups)
        except aws.AWS_ERRORS as error:
            _log_aws_failure("load states", error, len(groups))
            outcome.failed |= {index for members in groups.values() for index, _ in members}
            states = None
        if states is not None:
            work = {pk: self._pool.submit(self._settle, pk, members, states.get(pk))
                    for pk, members in groups.items()}
            for pk, future in work.items():
                result = future.result()
                if result.error:
                    outcome.failed |= {index for index, _ in groups[pk]}
                if result.plan:
                    outcome.counts["applied"] += len(result.plan.applied)
                    outcome.counts["stale"] += len(result.plan.stale)
                    outcome.counts["duplicate"] += len(result.plan.duplicates)
                outcome.counts["published"] += result.published
        outcome.failed |= history.result()
        outcome.failed |= letters.result()
        _emit_metrics(received, outcome)
        return outcome

    def _settle(self, pk: str, members: list[tuple[int, Change]], stored: dict[str, Any] | None) -> EntityResult:
        """Apply one entity's events and publish what changed."""
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
                        _state_attributes(winner),
                        winner.order_key,
                        current.version if current else None,
                        {n.key: {"body": n.body, "by": change.delivery}
                         for n, (change, _) in zip(fresh, result.plan.applied, strict=True)},
                    )
                    break
                except Conflict as conflict:
                    # Another invocation wrote this entity since we read it: plan again on its state.
                    stored = conflict.current
            else:
                result.error = "conflict retries exhausted"
                return result
            to_publish = result.plan.republish + fresh
            published = self.notifier.publish(to_publish)
            result.published = len(published)
            if len(published) < len(to_publish):
                result.error = f"{len(to_publish) - len(published)} notifications not published"
            self._clear_pending(pk, published)
        except aws.AWS_ERRORS as error:
            _log_aws_failure("settle entity", error, 1)
            result.error = type(error).__name__
        if result.error:
            logger.warning("entity not settled, will be retried", extra={"pk": pk, "error": result.error})
        return result

    def _clear_pending(self, pk: str, published: list[str]) -> None:
        # Published is what matters: an entry left behind only risks one repeated notification if
        # that event is ever redelivered, while failing here would make the redelivery certain.
        try:
            self.store.clear_pending(pk, published)
        except aws.AWS_ERRORS as error:
            _log_aws_failure("clear published notifications", error, len(published))

    def _write_history(self, received: list[Received], groups: dict[str, list[tuple[int, Change]]]) -> set[int]:
        received_at = now_utc()
        items = [
            _history_item(change, received[index].source, received_at)
            for members in groups.values()
            for index, change in members
        ]
        try:
            self.store.put_history(items)
        except aws.AWS_ERRORS as error:
            _log_aws_failure("write history", error, len(items))
            return {index for members in groups.values() for index, _ in members}
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


def _current(stored: dict[str, Any] | None) -> Current | None:
    if stored is None:
        return None
    outbox = stored.get("pending") or {}
    return Current(
        status=stored["status"],
        order_key=stored["order_key"],
        version=int(stored["version"]),
        pending={key: entry["body"] for key, entry in outbox.items()},
        claims={key: entry["by"] for key, entry in outbox.items()},
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


def _state_attributes(change: Change) -> dict[str, Any]:
    return _event_attributes(change) | {"updated_at": now_utc()}


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


def _log_aws_failure(step: str, error: Exception, items: int) -> None:
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
