"""The core both entry points share: route → read → settle claims → write → publish → keep history.

Events are grouped per entity in arrival order. A batch then runs in steps, each step's requests
concurrently:
1. route: decode, validate and group per entity; what cannot be routed is a dead letter (sent meanwhile);
2. read every entity's state (`BatchGetItem`, 100 per request);
3. check the claims that matter (was that change's notification published? `BatchGetItem` of history keys);
4. one conditional write per entity, whatever its number of events: the winner, and a claim per
   applied change (who may publish it, until when);
5. publish the applied changes, packed across entities ten per `PublishBatch` (each entity's in order);
6. keep the history (`BatchWriteItem`, 25 per request): an event's history item is written only
   after its notification was published, so its presence settles the claim. No clean-up write:
   the entity's next write drops the settled claims.
An AWS failure fails only the items it touched, which the caller reports for retry; retries are
safe because every step is idempotent and a redelivered event whose claim is unsettled publishes
again only when the claim is its own or its holder has certainly ended.

Nothing of a run is left running when `process` returns (Lambda freezes what is, and may resume it
after a taker published the same claims). A run with a `deadline` (the webhook's answer) starts no
state write and no publish past it: the safe points are before a publish starts and after its
history is written, so a publish that started is finished and recorded, not abandoned. Every
publish request starts only while the run's lease holds, and every write of claims outside a state
write is conditioned on the claims still being the run's own.
"""

import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from typing import Any

from . import aws
from .config import settings
from .dead_letters import DeadLetter, DeadLetterQueue
from .envelope import Poison, PoisonReason, iso_utc, now_utc
from .inbound import Received
from .lifecycle import PUBLISHED, Change, Claim, Current, Notification, Plan, plan
from .notify import Notifier
from .observability import emit_batch_metrics, emit_outcome_metrics, log_aws_failure, logger
from .outcomes import LATENCY_FROM, Tally
from .registry import BY_TYPE, family_of, route
from .store import (
    BATCH_GET_LIMIT,
    BATCH_WRITE_LIMIT,
    CHECK_AFTER,
    UNSETTLED,
    UPDATED_AT,
    Conflict,
    ItemTooLarge,
    StateWrite,
    StatusStore,
    chunks,
    unsettled_attributes,
)

MAX_CONFLICT_RETRIES = 5
# Threads for I/O: the requests of a step wait on the network together (the CPU work holds the GIL
# anyway, so more threads would not add throughput on Lambda's one or two vCPUs).
WORKERS = 32
# A claim outlives its holder's invocation by this much, for clocks that disagree between hosts.
CLOCK_SKEW_SECONDS = 2
# A run that nothing stops at a hard timeout (redrive, replay) holds its claims this long, and starts
# no publish in the last PUBLISH_SECONDS of it (the rest is retried), so no taker publishes alongside it.
UNBOUNDED_LEASE_SECONDS = 900
PUBLISH_SECONDS = 30

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

    stored: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    unread: set[str] = field(default_factory=set)


@dataclass
class EntityResult:
    plan: Plan | None = None
    stored: dict[str, Any] | None = None  # the state item the plan was made on (None: no state yet)
    to_publish: list[Notification] = field(default_factory=list)  # in order: taken over, then fresh
    published: int = 0
    known_kept: set[str] = field(default_factory=set)  # event ids whose history item exists
    error: str | None = None  # transient: the entity's records are retried
    poison: Poison | None = None  # permanent: the entity's events become dead letters

    @property
    def settled(self) -> bool:
        return not self.error and not self.poison and self.published == len(self.to_publish)


@dataclass(frozen=True)
class Lease:
    """How long this run's claims hold: `until` (epoch seconds) is past the run's certain end."""

    until: int
    publish_by: float  # no publish starts after this (epoch seconds)

    @classmethod
    def starting(cls, now: float, remaining_seconds: float | None) -> "Lease":
        if remaining_seconds is None:
            ends = now + UNBOUNDED_LEASE_SECONDS
            return cls(math.ceil(ends + CLOCK_SKEW_SECONDS), ends - PUBLISH_SECONDS)
        # Lambda stops the invocation at its timeout: nothing it does can happen later.
        ends = now + remaining_seconds
        return cls(math.ceil(ends + CLOCK_SKEW_SECONDS), ends)


class Pipeline:
    def __init__(self, store: StatusStore, notifier: Notifier, dead_letters: DeadLetterQueue,
                 clock: Callable[[], float] = time.time, accounts: frozenset[str] = frozenset()):
        self.store = store
        self.notifier = notifier
        self.dead_letters = dead_letters
        self.clock = clock  # wall-clock epoch seconds: claims are compared across hosts
        self.accounts = accounts  # the accepted accounts: the only ones outcome metrics may name
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="pipeline")

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
            published = self._check_claims(read, groups, now)
            read.unread |= read.stored.keys() - published.keys()
            if read.stored and self._past(deadline):
                # Nothing written yet: the whole delivery is retried, with no claim left to wait for.
                outcome.late = True
                read.unread |= read.stored.keys()
            outcome.failed |= {index for pk in read.unread for index, _ in groups[pk]}
            results = self._write_states(groups, read, published, now, lease)
            outcome.late |= self._publish(results, lease, deadline)
            self._emit_outcomes(results)
            self._release_unpublished(results)
            failed_history = self._keep_history(received, groups, results)
            self._settle(received, groups, results, outcome)
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
                outcome.dead_letters[index] = _dead_letter(item, poison)
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

    def _load_states(self, pks: list[str]) -> dict[str, dict[str, Any]] | None:
        try:
            return self.store.load_states(pks)
        except aws.AWS_ERRORS as error:
            log_aws_failure("load states", error, len(pks))
            return None

    def _check_claims(self, read: StatesRead, groups: dict[str, Members], now: float) -> dict[str, set[str]]:
        """pk -> the claims known published, for every readable entity (left out: the check failed).

        Only claims that can matter are checked: an entity's claims when it will be written (its
        settled claims are dropped then), or a claim of an event this batch carries again.
        """
        wanted: dict[str, dict[str, str]] = {}
        for pk, stored in read.stored.items():
            current = _current(stored)
            if current and current.claims:
                changes = [change for _, change in groups[pk]]
                carried = {change.event.id for change in changes}
                if carried & current.claims.keys() or plan(current, changes, now=now).winner:
                    wanted[pk] = {event_id: claim.event_time for event_id, claim in current.claims.items()}
        published: dict[str, set[str]] = {pk: set() for pk in read.stored.keys() - wanted.keys()}
        for found in self._each(self._published, list(_claim_chunks(wanted))):
            if found is not None:
                published |= found
        return published

    def _published(self, claims: dict[str, dict[str, str]]) -> dict[str, set[str]] | None:
        try:
            return self.store.published(claims)
        except aws.AWS_ERRORS as error:
            log_aws_failure("check claims", error, len(claims))
            return None

    def _write_states(self, groups: dict[str, Members], read: StatesRead, published: dict[str, set[str]],
                      now: float, lease: Lease) -> dict[str, EntityResult]:
        pks = [pk for pk in groups if pk not in read.unread]
        return dict(zip(pks, self._each(
            lambda pk: self._write_state(pk, [c for _, c in groups[pk]], read.stored[pk], published[pk], now, lease),
            pks)))

    def _write_state(self, pk: str, changes: list[Change], stored: dict[str, Any] | None,
                     published: set[str], now: float, lease: Lease) -> EntityResult:
        """Apply one entity's events (and claims taken over) in one conditional write."""
        result = EntityResult(known_kept=set(published))
        published = result.known_kept
        first = _current(stored)
        checked = set(first.claims) if first else set()
        try:
            for _ in range(MAX_CONFLICT_RETRIES):
                current = _current(stored)
                unchecked = {event_id: claim.event_time for event_id, claim in (current.claims if current else {}).items()
                             if event_id not in checked}
                if unchecked:  # written by whoever won the race: checked now, rarely needed
                    published |= self.store.published({pk: unchecked})[pk]
                    checked |= unchecked.keys()
                result.plan = plan(current, changes, published, now, lease.until)
                result.stored = stored
                if not result.plan.writes:
                    break
                try:
                    self.store.save_state(pk, _state_write(result.plan, changes, current))
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
        result.to_publish = result.plan.notifications()
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
            log_aws_failure("publish notifications", error, len(results[pk].to_publish))
        for pk, keys in done.published.items():
            results[pk].published = len(keys)
        return False

    def _emit_outcomes(self, results: dict[str, EntityResult]) -> None:
        """The delivery-health metrics of what this run published, printed at once: a crash later in
        the run (after the history that proves the publishing, say) must not lose them, since no
        retry publishes those changes again. Never a reason to fail the batch."""
        try:
            emit_outcome_metrics(self._tally(results))
        except Exception as error:
            # Raising would fail the run after publishing (its records retried, a webhook delivery
            # answered 5xx) for a metric. Logged; the counts are lost.
            logger.exception("delivery-health metrics not emitted", extra={"error": type(error).__name__})

    def _tally(self, results: dict[str, EntityResult]) -> Tally:
        """The outcomes of the changes this run published (outcomes.py: why published, not written)."""
        tally = Tally()
        for result in results.values():
            if result.plan is None or not result.published:
                continue
            stored = result.stored or {}
            # The time of the status each fresh change replaced; a republished claim keeps no such time.
            previous_time = stored.get("event_time")
            replaced: list[str | None] = [None] * len(result.plan.republish)
            for change, _ in result.plan.applied:
                replaced.append(previous_time)
                previous_time = change.event.time_utc
            published = (result.plan.republish + result.plan.applied)[:result.published]
            for (change, previous), time_replaced in zip(published, replaced):
                account = change.account_sid or stored.get("account_sid")
                tally.add(family_of(change.event.type), change,
                          account if account in self.accounts else None,
                          time_replaced if previous == LATENCY_FROM else None)
        return tally

    def _release_unpublished(self, results: dict[str, EntityResult]) -> None:
        """Claims this run wrote but could not publish: released, so a retry need not wait for the lease.

        The published ones among them (a prefix) are marked PUBLISHED: their history, the usual proof,
        is not written for an entity that is retried.
        """
        left = {pk: result for pk, result in results.items()
                if result.plan and result.to_publish and result.published < len(result.to_publish)}
        self._each(self._release, left.keys(), left.values())

    def _release(self, pk: str, result: EntityResult) -> None:
        assert result.plan is not None
        claims = result.plan.claims
        ids = result.plan.published_now
        texts = {event_id: replace(claims[event_id], holder=PUBLISHED).text() for event_id in ids[:result.published]}
        texts |= {event_id: replace(claims[event_id], until=0).text() for event_id in ids[result.published:]}
        self._replace_own_claims(pk, {event_id: claims[event_id] for event_id in ids}, texts, "release claims")

    def _replace_own_claims(self, pk: str, held: dict[str, Claim], texts: dict[str, str], action: str) -> None:
        try:
            if not self.store.replace_claims(pk, texts, {event_id: _claim_texts(claim) for event_id, claim in held.items()},
                                             now_utc()):
                # Taken over (this run outlived its lease) or settled meanwhile: no longer this run's.
                logger.info("claims no longer held, left as they are", extra={"pk": pk, "action": action})
        except aws.AWS_ERRORS as error:
            log_aws_failure(action, error, len(texts))

    def _keep_history(self, received: list[Received], groups: dict[str, Members],
                      results: dict[str, EntityResult]) -> set[int]:
        """History items of the settled entities' events: the published ones' are the proof they were.

        Left out: events whose claim a live holder keeps (its item is that holder's to write), and
        events whose item is known to exist already.
        """
        received_at = now_utc()
        items: dict[tuple[str, str], tuple[dict[str, Any], set[int]]] = {}
        for pk, result in results.items():
            if not result.settled or result.plan is None:
                continue
            skip = result.plan.deferred | result.known_kept
            for index, change in groups[pk]:
                if change.event.id in skip:
                    continue
                item = self.store.history_item(pk, change.event.time_utc, change.event.id,
                                               _event_attributes(change) | {"order_key": change.order_key,
                                                                            "source": received[index].source,
                                                                            "received_at": received_at})
                items.setdefault((pk, item["sk"]), (item, set()))[1].add(index)
        failed: set[int] = set()
        for indexes in self._each(self._write_history, chunks(list(items.values()), BATCH_WRITE_LIMIT)):
            failed |= indexes
        unproven = {pk: plan for pk, members in groups.items()
                    if pk in results and results[pk].to_publish and (plan := results[pk].plan)
                    and any(index in failed for index, _ in members)}
        self._each(self._mark_published, unproven.keys(), unproven.values())
        return failed

    def _mark_published(self, pk: str, plan: Plan) -> None:
        """Published, but no history item proves it: say so in the claims, so the retry does not publish again."""
        held = {event_id: plan.claims[event_id] for event_id in plan.published_now}
        self._replace_own_claims(pk, held, {event_id: replace(claim, holder=PUBLISHED).text()
                                            for event_id, claim in held.items()}, "mark claims published")

    def _write_history(self, batch: list[tuple[dict[str, Any], set[int]]]) -> set[int]:
        try:
            self.store.put_history([item for item, _ in batch])
        except aws.AWS_ERRORS as error:
            log_aws_failure("write history", error, len(batch))
            return {index for _, indexes in batch for index in indexes}
        return set()

    def _settle(self, received: list[Received], groups: dict[str, Members], results: dict[str, EntityResult],
                outcome: Outcome) -> None:
        """Count what happened and decide, per entity, what the caller must retry or dead-letter."""
        unstorable = {index: _dead_letter(received[index], result.poison)
                      for pk, result in results.items() if result.poison for index, _ in groups[pk]}
        if unstorable:
            outcome.dead_letters |= unstorable
            outcome.failed |= self._send_dead_letters(unstorable)
        for pk, result in results.items():
            if result.poison:
                continue
            if not result.error and not result.settled:
                result.error = f"{len(result.to_publish) - result.published} notifications not published"
            if result.error:
                logger.warning("entity not settled, will be retried", extra={"pk": pk, "error": result.error})
                outcome.failed |= {index for index, _ in groups[pk]}
            elif result.plan:
                # A webhook request may be Twilio's retry of the very delivery whose earlier attempt
                # holds the claim (it answered 503 at its deadline and works on): answering 200 would
                # end that delivery, and should the holder die nobody would publish. So: "retry later".
                # A stream record's holder is always another record, which Lambda retries on its own.
                outcome.failed |= {index for index, change in groups[pk]
                                   if change.event.id in result.plan.deferred and received[index].source == "webhook"}
            if result.plan:
                outcome.counts["applied"] += len(result.plan.applied)
                outcome.counts["stale"] += len(result.plan.stale)
                outcome.counts["duplicate"] += len(result.plan.duplicates)
            outcome.counts["published"] += result.published

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


def _claim_chunks(wanted: dict[str, dict[str, str]]):
    """Groups of whole entities, about BATCH_GET_LIMIT claims each (an entity's claims stay together)."""
    group: dict[str, dict[str, str]] = {}
    size = 0
    for pk, claims in wanted.items():
        if group and size + len(claims) > BATCH_GET_LIMIT:
            yield group
            group, size = {}, 0
        group[pk] = claims
        size += len(claims)
    if group:
        yield group


def _claim_texts(claim: Claim) -> tuple[str, str]:
    """The two ways a state item can hold `claim`: with its event time, or without (the item's own time)."""
    return claim.text(), claim.text(claim.event_time)


def _current(stored: dict[str, Any] | None) -> Current | None:
    if stored is None:
        return None
    claims = stored.get("claims") or {}
    return Current(
        status=stored["status"],
        order_key=stored["order_key"],
        version=int(stored["version"]),
        claims={event_id: Claim.from_text(text, stored["event_time"]) for event_id, text in claims.items()},
    )


def _state_write(result: Plan, changes: list[Change], current: Current | None) -> StateWrite:
    winner = result.winner
    # The claims map is written whole, with the item's event_time: the winner's claim need not repeat it.
    item_time = winner.event.time_utc if winner else None
    claims = {event_id: claim.text(item_time) for event_id, claim in result.claims.items()}
    version = current.version if current else None
    now = datetime.now(UTC)
    if winner is None:
        return StateWrite({UPDATED_AT: iso_utc(now)}, None, version, claims)
    # Index attributes from any event of the group: the winning status event may lack them.
    indexed = {name: value for change in changes for name, value in change.indexed.items()}
    attributes = _event_attributes(winner) | indexed | {UPDATED_AT: iso_utc(now)}
    if winner.recheck_after:
        # Due for a check against Twilio's REST API if nothing changes it meanwhile (reconcile.py).
        attributes |= unsettled_attributes(winner.entity, winner.pk, iso_utc(now + winner.recheck_after))
    # A final status leaves the Unsettled index: nothing is left to reconcile.
    remove = () if winner.recheck_after else (UNSETTLED, CHECK_AFTER)
    return StateWrite(attributes, winner.order_key, version, claims, remove)


def _event_attributes(change: Change) -> dict[str, Any]:
    event = change.event
    return {
        "entity": change.entity,
        "id": change.entity_id,
        "status": change.status,
        "event_type": event.type,
        "event_id": event.id,
        "event_time": event.time_utc,
        "data": json_text(event.data),
    }


def json_text(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


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


@cache
def default_pipeline() -> Pipeline:
    config = settings()
    return Pipeline(
        StatusStore(config.table_name, aws.client("dynamodb"), config.history_retention_days),
        Notifier(config.topic_arn, aws.client("sns")),
        DeadLetterQueue(config.dead_letter_queue_url, aws.client("sqs")),
        accounts=frozenset(config.twilio_account_sids),
    )
