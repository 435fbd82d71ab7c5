"""Delivery health: what the sink's users watch, tallied from the changes a run published.

A change is tallied by the run that publishes its notification (contract 3: one per applied change),
never by the run that merely wrote it. So each outcome counts once when no fault occurred, and a
retry does not count it again: after a failed publish the change is a duplicate for the retry, which
republishes the claim and tallies it then (and the first run tallied nothing); a state write that
took effect but answered an error is likewise tallied by the retry that takes its claim over.
Duplicates, stale events and corrections that confirm a status publish nothing and count nothing.
What can still count twice is what can be notified twice (docs/guarantees.md, "Repeats after a fault").

Bounded cardinality, because every combination of dimension values is a billed CloudWatch metric:
statuses are each family's declared final ones, error codes the documented ones below (the rest
`other`), accounts only accepted ones; entity ids never become dimensions.
"""

from collections import Counter, defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from .families.base import Family
from .observability import MetricUnit, emit_without_service, is_metrics_disabled, logger
from .precedence import Change, Plan
from .registry import family_of
from .state import EntityState

# Twilio's most frequent error codes of failed or undelivered messages (https://www.twilio.com/docs/api/errors).
ERROR_CODES = frozenset({
    "30001",  # queue overflow
    "30002",  # account suspended
    "30003",  # unreachable destination handset
    "30004",  # message blocked
    "30005",  # unknown destination handset
    "30006",  # landline or unreachable carrier
    "30007",  # message filtered (carrier filtering)
    "30008",  # unknown error
    "30009",  # missing segment
    "30010",  # message price exceeds max price
    "30022",  # US A2P 10DLC: rate limits exceeded
    "30023",  # US A2P 10DLC: daily message cap reached
    "30024",  # numeric sender id not provisioned
    "30032",  # toll-free number not verified
    "30034",  # US A2P 10DLC: message from an unregistered number
    "21408",  # permission to send to this region not enabled
    "21610",  # recipient unsubscribed (STOP)
    "21612",  # the 'To' number cannot be reached from the 'From' number
    "21614",  # 'To' is not a valid mobile number
    "63016",  # WhatsApp: free-form message outside the 24-hour window
})
OTHER_CODE = "other"  # a code not listed above
NO_CODE = "none"  # a failure whose event states no code
FAILURES = frozenset({"undelivered", "failed"})  # the outcomes that carry an error code
# Delivery latency: from a message's `sent` to the end of its delivery (an outcome), both events' times.
LATENCY_FROM = "sent"
LATENCY_TO = frozenset({"delivered"}) | FAILURES


def bounded_code(code: str | None) -> str:
    if code is None:
        return NO_CODE
    return code if code in ERROR_CODES else OTHER_CODE


@dataclass
class Tally:
    """One run's published outcomes, ready to be emitted as metrics."""

    outcomes: Counter = field(default_factory=Counter)  # (family, status, account or None) -> count
    errors: Counter = field(default_factory=Counter)  # (error code, account or None) -> count
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # family -> ms
    setbacks: Counter = field(default_factory=Counter)  # family -> count
    # Each setback's entity, for the log line an operator reads when the alarm fires.
    setback_entities: list[tuple[str, str, str]] = field(default_factory=list)  # (entity, id, status)

    @classmethod
    def of_published(cls, written: list[tuple[Plan, int, EntityState | None]], accepted: Collection[str]) -> "Tally":
        """The outcomes of the changes a run published: per entity, the plan it wrote, how many of the
        plan's notifications were published (a prefix), and the state the plan was made on.

        Accounts that are not accepted are left out of the dimensions (they are not the operator's to bound).
        """
        tally = cls()
        for plan, published_count, stored in written:
            # The time of the status each fresh change replaced; a republished claim keeps no such time.
            previous_time = stored.winner.event_time if stored else None
            replaced: list[str | None] = [None] * len(plan.republish)
            for change, _ in plan.applied:
                replaced.append(previous_time)
                previous_time = change.event.time_utc
            for (change, previous), time_replaced in zip(plan.to_publish[:published_count], replaced):
                account = change.account_sid or (stored.account_sid if stored else None)
                tally.add(family_of(change.event.type), change, account if account in accepted else None,
                          time_replaced if previous == LATENCY_FROM else None)
        return tally

    def add(self, family: Family, change: Change, account: str | None,
            sent_time: str | None = None) -> None:
        """Tally one published change. `sent_time`: when its previous status was `sent`, that event's time."""
        status = change.status
        if status in family.final:
            self.outcomes[family.name, status, account] += 1
            if status in FAILURES and family.error_fields:
                self.errors[bounded_code(family.error_code(change.event)), account] += 1
            if sent_time is not None and status in LATENCY_TO:
                elapsed = _milliseconds(sent_time, change.event.time_utc)
                if elapsed >= 0:  # clocks of two Twilio systems may disagree: no negative durations
                    self.latencies[family.name].append(elapsed)
        if status in family.setbacks:
            self.setbacks[family.name] += 1
            self.setback_entities.append((change.entity, change.entity_id, status))


def _milliseconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() * 1000


def emit_outcome_metrics(tally: Tally) -> None:
    """Delivery health, without the `service` dimension: an outcome is the message's,
    whichever door or run carried it, so one metric per outcome sums both doors and the reconciler.

    Each count goes to two dimension sets in one record: without the account (what alarms watch) and,
    where the account is known and accepted, with it (what `twilio-sink report --account` reads).
    """
    for entity, entity_id, status in tally.setback_entities:
        # The alarm's notification cannot name the entity; this line does (docs/operations.md).
        logger.warning("compliance setback", extra={"entity": entity, "id": entity_id, "status": status})
    if is_metrics_disabled():
        return
    for (family, status, account), number in tally.outcomes.items():
        emit_without_service("Outcomes", MetricUnit.Count, [number], {"family": family, "status": status}, account)
    for (code, account), number in tally.errors.items():
        emit_without_service("DeliveryErrors", MetricUnit.Count, [number], {"error_code": code}, account)
    for family, values in tally.latencies.items():
        emit_without_service("DeliveryLatency", MetricUnit.Milliseconds, values, {"family": family})
    for family, number in tally.setbacks.items():
        emit_without_service("ComplianceSetbacks", MetricUnit.Count, [number], {"family": family})
