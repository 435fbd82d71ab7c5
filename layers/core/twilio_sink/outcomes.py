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
from dataclasses import dataclass, field
from datetime import datetime

from .families.base import Family
from .precedence import Change

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
