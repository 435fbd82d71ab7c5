"""The core both entry points share: route → read → check claims → write → publish → keep history.

One word, one meaning here: a claim is *proven* once its history item exists (claims.py); an entity's
result is *done* when it was written and everything it had to publish was published; *unsettled*
means only a status that is not final (the reconciler's index).

Events are grouped per entity in arrival order. A batch then runs in steps, each step's requests
concurrently:
1. route: decode, validate and group per entity; what cannot be routed is a dead letter (sent meanwhile);
2. read every entity's state (`BatchGetItem`, 100 per request);
3. check the claims that matter (is that change proven published? `BatchGetItem` of history keys, claims.py);
4. one conditional write per entity, whatever its number of events: the winner, and a claim per
   applied change (who may publish it, until when);
5. publish the applied changes, packed across entities ten per `PublishBatch` (each entity's in order);
6. keep the history (`BatchWriteItem`, 25 per request): an event's history item is written only
   after its notification was published, so its presence proves the claim. No clean-up write:
   the entity's next write drops the proven claims.
An AWS failure fails only the items it touched, which the caller reports for retry; retries are
safe because every step is idempotent and a redelivered event whose claim is unproven publishes
again only when the claim is its own or its holder has certainly ended.

Nothing of a run is left running when `process` returns (Lambda freezes what is, and may resume it
after a taker published the same claims). A run with a `deadline` (the webhook's answer) starts no
state write and no publish past it: the safe points are before a publish starts and after its
history is written, so a publish that started is finished and recorded, not abandoned. Every
publish request starts only while the run's lease holds, and every write of claims outside a state
write is conditioned on the claims still being the run's own.
"""

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache

from . import aws
from .claims import ClaimKeeper, Lease
from .config import settings
from .dead_letters import DeadLetter, DeadLetterQueue
from .notify import LeaseOver, Notification, Notifier, notification
from .observability import emit_batch_metrics, log_aws_failure, logger
from .outcomes import Tally, emit_outcome_metrics
from .poison import Poison, PoisonReason
from .precedence import Change, Plan, plan
from .received import Received
from .registry import BY_TYPE, route
from .state import EntityState, HistoryEntry
from .store import BATCH_GET_LIMIT, BATCH_WRITE_LIMIT, Conflict, ItemTooLarge, StatusStore, chunks
from .times import now_utc

MAX_CONFLICT_RETRIES = 5
# Threads for I/O: the requests of a step wait on the network together (the CPU work holds the GIL
# anyway, so more threads would not add throughput on Lambda's one or two vCPUs).
WORKERS = 32

Members = list[tuple[int, Change]]  # (index in the received list, change), in arrival order


@dataclass
class Outcome:
    """What happened to a list of received items."""

    failed: set[int] = field(default_factory=set)  # indexes to retry (transient AWS failures)
    dead_letters: dict[int, DeadLetter] = field(default_factory=dict)  # index -> letter (sent or not)
    counts: Counter = field(default_factory=Counter)  # applied / stale / duplicate / published
    late: bool = False  # the deadline passed before the run's state writes or publish: retried instead

    def summary(self) -> dict[str, int]:
        return {
            "applied": self.counts["applied"],
            "stale": self.counts["stale"],
            "duplicate": self.counts["duplicate"],
            "dead_lettered": len(self.dead_letters),
            "failed": len(self.failed),
        }


@dataclass
class StatesRead:
    """The read step's result: each entity's stored state item (None: no state yet), or unread."""

    stored: dict[str, EntityState | None] = field(default_factory=dict)
    unread: set[str] = field(default_factory=set)


@dataclass
class EntityResult:
    plan: Plan | None = None
    stored: EntityState | None = None  # the state the plan was made on (None: no state yet)
    to_publish: list[Notification] = field(default_factory=list)  # in order: taken over, then fresh
    published_count: int = 0  # how many of `to_publish` were published (a prefix)
    known_kept: set[str] = field(default_factory=set)  # event ids whose history item exists
    error: str | None = None  # transient: the entity's records are retried
    poison: Poison | None = None  # permanent: the entity's events become dead letters

    @property
    def done(self) -> bool:
        """Written, and everything it had to publish published."""
        return not self.error and not self.poison and self.published_count == len(self.to_publish)


class Pipeline:
    def __init__(self, store: StatusStore, notifier: Notifier, dead_letters: DeadLetterQueue,
                 clock: Callable[[], float] = time.time, accounts: frozenset[str] = frozenset()):
        self.store = store
        self.notifier = notifier
        self.dead_letters = dead_letters
        self.clock = clock  # wall-clock epoch seconds: claims are compared across hosts
        self.accounts = accounts  # the accepted accounts: the only ones outcome metrics may name
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="pipeline")
        self.claims = ClaimKeeper(store, self._each)

    def process(self, received: list[Received], remaining_seconds: float | None = None,
                deadline: float | None = None) -> Outcome:
        """`remaining_seconds`: until the invocation's hard timeout (None when nothing stops the run);
        `deadline` (the clock's epoch seconds): no state write or publish starts after it."""
        now = self.clock()
        lease = Lease.starting(now, remaining_seconds)
        outcome = Outcome()
        groups = self._route(received, outcome)
        letters = self._pool.submit(self._send_dead_letters, outcome.dead_letters)
        try:
            read = self._read_states(groups)
            changes = {pk: [change for _, change in members] for pk, members in groups.items()}
            proven = self.claims.proven(read.stored, {pk: changes[pk] for pk in read.stored}, now)
            read.unread |= read.stored.keys() - proven.keys()
            if read.stored and self._past(deadline):
                # Nothing written yet: the whole delivery is retried, with no claim left to wait for.
                outcome.late = True
                read.unread |= read.stored.keys()
            outcome.failed |= {index for pk in read.unread for index, _ in groups[pk]}
            results = self._write_states(changes, read, proven, now, lease)
            outcome.late |= self._publish(results, lease, deadline)
            self._emit_outcomes(results)
            self.claims.release({pk: (result.plan, result.published_count) for pk, result in results.items()
                                 if result.plan and result.published_count < len(result.to_publish)})
            failed_history = self._keep_history(received, groups, results)
            self._conclude(received, groups, results, outcome)
        finally:
            wait([letters])  # nothing of the run outlives it
        outcome.failed |= failed_history | letters.result()
        emit_batch_metrics(received, outcome.counts, dead_letters=len(outcome.dead_letters),
                           failed=len(outcome.failed), known_types=BY_TYPE)
        return outcome

    def _past(self, deadline: float | None) -> bool:
        return deadline is not None and self.clock() >= deadline

    def _each(self, fn: Callable, *iterables) -> list:
        """`fn` over the items concurrently, every call ended before this returns (or raises)."""
        futures = [self._pool.submit(fn, *args) for args in zip(*iterables)]
        wait(futures)
        return [future.result() for future in futures]

    # ---- the steps ---------------------------------------------------------------------------

    def _route(self, received: list[Received], outcome: Outcome) -> dict[str, Members]:
        groups: dict[str, Members] = defaultdict(list)
        for index, item in enumerate(received):
            try:
                change = replace(route(item.cloudevent(), item.account), carrier=item.carrier, corrects=item.corrects)
            except Poison as poison:
                outcome.dead_letters[index] = item.dead_letter(poison)
            else:
                groups[change.pk].append((index, change))
        return groups

    def _read_states(self, groups: dict[str, Members]) -> StatesRead:
        read = StatesRead()
        for pks, found in zip(chunks(sorted(groups), BATCH_GET_LIMIT),
                              self._each(self._load_states, chunks(sorted(groups), BATCH_GET_LIMIT))):
            if found is None:
                read.unread |= set(pks)
            else:
                read.stored |= {pk: found.get(pk) for pk in pks}
        return read

    def _load_states(self, pks: list[str]) -> dict[str, EntityState] | None:
        try:
            return self.store.load_states(pks)
        except aws.AWS_ERRORS as error:
            log_aws_failure("load states", error, len(pks))
            return None

    def _write_states(self, changes: dict[str, list[Change]], read: StatesRead, proven: dict[str, set[str]],
                      now: float, lease: Lease) -> dict[str, EntityResult]:
        pks = [pk for pk in changes if pk not in read.unread]
        return dict(zip(pks, self._each(
            lambda pk: self._write_state(pk, changes[pk], read.stored[pk], proven[pk], now, lease), pks)))

    def _write_state(self, pk: str, changes: list[Change], stored: EntityState | None,
                     proven: set[str], now: float, lease: Lease) -> EntityResult:
        """Apply one entity's events (and claims taken over) in one conditional write."""
        result = EntityResult(known_kept=set(proven))
        proven = result.known_kept
        checked = set(stored.claims) if stored else set()
        try:
            for _ in range(MAX_CONFLICT_RETRIES):
                unchecked = {event_id: claim for event_id, claim in (stored.claims if stored else {}).items()
                             if event_id not in checked}
                if unchecked:  # written by whoever won the race: checked now, rarely needed
                    proven |= self.claims.proven_of(pk, unchecked)
                    checked |= unchecked.keys()
                result.plan = plan(stored, changes, proven, now, lease.until)
                result.stored = stored
                if not result.plan.writes:
                    break
                try:
                    self.store.save_state(pk, result.plan.state_write(changes, stored, datetime.now(UTC)))
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
            log_aws_failure("write state", error, 1)
            result.error = type(error).__name__
            return result
        result.to_publish = [notification(change, previous) for change, previous in result.plan.to_publish]
        return result

    def _publish(self, results: dict[str, EntityResult], lease: Lease, deadline: float | None) -> bool:
        """Publish the applied changes; True when the deadline passed before any publish started."""
        series = {pk: result.to_publish for pk, result in results.items() if not result.error and result.to_publish}
        if series and self._past(deadline):
            # Answer now rather than start a publish that must then be finished and recorded first.
            for pk in series:
                results[pk].error = "deadline passed before publishing"
            return True
        # Each request, not only the first: past the lease a taker may publish the same claims.
        done = self.notifier.publish_in_order(series, run=self._each,
                                              may_start=lambda: self.clock() < lease.publish_by)
        for pk, error in done.errors.items():
            if isinstance(error, LeaseOver):
                # No AWS failure: this run's time for its claims ran out; a retry or a taker publishes them.
                logger.warning("lease over before publishing; left to be retried",
                               extra={"pk": pk, "items": len(results[pk].to_publish) - len(done.published.get(pk, []))})
            else:
                log_aws_failure("publish notifications", error, len(results[pk].to_publish))
        for pk, keys in done.published.items():
            results[pk].published_count = len(keys)
        return False

    def _emit_outcomes(self, results: dict[str, EntityResult]) -> None:
        """The delivery-health metrics of what this run published, printed at once: a crash later in
        the run (after the history that proves the publishing, say) must not lose them, since no
        retry publishes those changes again. Never a reason to fail the batch."""
        try:
            emit_outcome_metrics(Tally.of_published(
                [(result.plan, result.published_count, result.stored) for result in results.values() if result.plan],
                self.accounts))
        except Exception as error:
            # Raising would fail the run after publishing (its records retried, a webhook delivery
            # answered 5xx) for a metric. Logged; the counts are lost.
            logger.exception("delivery-health metrics not emitted", extra={"error": type(error).__name__})

    def _keep_history(self, received: list[Received], groups: dict[str, Members],
                      results: dict[str, EntityResult]) -> set[int]:
        """History items of the done entities' events: the published ones' are the proof they were.

        Left out: events whose claim a live holder keeps (its item is that holder's to write), and
        events whose item is known to exist already.
        """
        received_at = now_utc()
        entries: dict[tuple[str, str, str], tuple[HistoryEntry, set[int]]] = {}
        for pk, result in results.items():
            if not result.done or result.plan is None:
                continue
            skip = result.plan.deferred | result.known_kept
            for index, change in groups[pk]:
                if change.event.id in skip:
                    continue
                entry = HistoryEntry(change.recorded(), change.order_key, received[index].door, received_at)
                entries.setdefault((pk, change.event.time_utc, change.event.id), (entry, set()))[1].add(index)
        failed: set[int] = set()
        for indexes in self._each(self._write_history, chunks(list(entries.values()), BATCH_WRITE_LIMIT)):
            failed |= indexes
        self.claims.mark_published({pk: plan for pk, members in groups.items()
                                    if pk in results and results[pk].to_publish and (plan := results[pk].plan)
                                    and any(index in failed for index, _ in members)})
        return failed

    def _write_history(self, batch: list[tuple[HistoryEntry, set[int]]]) -> set[int]:
        try:
            self.store.put_history([entry for entry, _ in batch])
        except aws.AWS_ERRORS as error:
            log_aws_failure("write history", error, len(batch))
            return {index for _, indexes in batch for index in indexes}
        return set()

    def _conclude(self, received: list[Received], groups: dict[str, Members], results: dict[str, EntityResult],
                outcome: Outcome) -> None:
        """Count what happened and decide, per entity, what the caller must retry or dead-letter."""
        unstorable = {index: received[index].dead_letter(result.poison)
                      for pk, result in results.items() if result.poison for index, _ in groups[pk]}
        if unstorable:
            outcome.dead_letters |= unstorable
            outcome.failed |= self._send_dead_letters(unstorable)
        for pk, result in results.items():
            if result.poison:
                continue
            if not result.error and not result.done:
                result.error = f"{len(result.to_publish) - result.published_count} notifications not published"
            if result.error:
                logger.warning("entity not done, will be retried", extra={"pk": pk, "error": result.error})
                outcome.failed |= {index for index, _ in groups[pk]}
            elif result.plan:
                # What arrived says whether a claim held by another carrier may be its own earlier
                # attempt (received.Received.retry_while_held): then "retry later", not "done".
                outcome.failed |= {index for index, change in groups[pk]
                                   if change.event.id in result.plan.deferred and received[index].retry_while_held}
            if result.plan:
                outcome.counts["applied"] += len(result.plan.applied)
                outcome.counts["stale"] += len(result.plan.stale)
                outcome.counts["duplicate"] += len(result.plan.duplicates)
            outcome.counts["published"] += result.published_count

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
            log_aws_failure("send dead letters", error, len(indexes))
            sent = set()
        return {index for position, index in enumerate(indexes) if position not in sent}


@cache
def default_pipeline() -> Pipeline:
    config = settings()
    return Pipeline(
        StatusStore(config.table_name, aws.client("dynamodb"), config.history_retention_days),
        Notifier(config.topic_arn, aws.client("sns")),
        DeadLetterQueue(config.dead_letter_queue_url, aws.client("sqs")),
        accounts=frozenset(config.twilio_account_sids),
    )
