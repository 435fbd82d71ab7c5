"""The claim protocol: how an applied change is published once, whoever dies when.

A state write leaves a claim per applied change (state.Claim: the previous status, the event's
time, its holder, until when). The holder publishes it, then writes the event's history item: that
item is the proof of publishing, so the entity's next write drops the claim. A redelivered event
whose claim is unproven takes it over when the claim is its own or its holder has certainly ended
(`precedence.plan` decides); a live holder's claim is left to it.

This module holds what runs around a state write: the run's `Lease`, the check of which claims
are proven, and the rewrites of a run's own claims when it cannot finish (released for a retry,
or marked published when the proof could not be written). Every rewrite is conditioned on the
claims still being the run's own, so a run that outlived its lease changes nothing of a taker's.
"""

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from . import aws
from .observability import log_aws_failure, logger
from .precedence import Change, Plan, plan
from .state import PUBLISHED, Claim, EntityState
from .store import BATCH_GET_LIMIT, StatusStore
from .times import now_utc

# A claim outlives its holder's invocation by this much, for clocks that disagree between hosts.
CLOCK_SKEW_SECONDS = 2
# A run that nothing stops at a hard timeout (redrive, replay) holds its claims this long, and starts
# no publish in the last PUBLISH_SECONDS of it (the rest is retried), so no taker publishes alongside it.
UNBOUNDED_LEASE_SECONDS = 900
PUBLISH_SECONDS = 30

Each = Callable[..., list]  # the pipeline's concurrent map: every call ended before it returns


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


class ClaimKeeper:
    """The claim steps of a run, against the store; `each` runs their requests concurrently."""

    def __init__(self, store: StatusStore, each: Each):
        self.store = store
        self.each = each

    def proven(self, states: dict[str, EntityState | None], changes: dict[str, list[Change]],
               now: float) -> dict[str, set[str]]:
        """pk -> the claims proven published, for every entity given (left out: the check failed).

        Only claims that can matter are checked: an entity's claims when it will be written (its
        proven claims are dropped then), or a claim of an event this batch carries again.
        """
        wanted: dict[str, dict[str, str]] = {}
        for pk, current in states.items():
            if current and current.claims:
                carried = {change.event.id for change in changes[pk]}
                if carried & current.claims.keys() or plan(current, changes[pk], now=now).winner:
                    wanted[pk] = {event_id: claim.event_time for event_id, claim in current.claims.items()}
        proven: dict[str, set[str]] = {pk: set() for pk in states.keys() - wanted.keys()}
        for found in self.each(self._with_history, list(_whole_entities(wanted))):
            if found is not None:
                proven |= found
        return proven

    def proven_of(self, pk: str, claims: dict[str, Claim]) -> set[str]:
        """Which of one entity's claims are proven published (raises on an AWS failure)."""
        return self.store.with_history({pk: {event_id: claim.event_time for event_id, claim in claims.items()}})[pk]

    def _with_history(self, claims: dict[str, dict[str, str]]) -> dict[str, set[str]] | None:
        try:
            return self.store.with_history(claims)
        except aws.AWS_ERRORS as error:
            log_aws_failure("check claims", error, len(claims))
            return None

    def release(self, unfinished: dict[str, tuple[Plan, int]]) -> None:
        """Claims a run wrote but could not publish (pk -> its plan, how many it published): released,
        so a retry need not wait for the lease.

        The published ones among them (a prefix) are marked PUBLISHED: their history, the usual proof,
        is not written for an entity that is retried.
        """
        self.each(self._release, unfinished.keys(), unfinished.values())

    def _release(self, pk: str, unfinished: tuple[Plan, int]) -> None:
        written, published = unfinished
        ids = written.publish_ids
        held = {event_id: written.claims[event_id] for event_id in ids}
        rewritten = {event_id: replace(held[event_id], holder=PUBLISHED) for event_id in ids[:published]}
        rewritten |= {event_id: replace(held[event_id], until=0) for event_id in ids[published:]}
        self._replace_own(pk, held, rewritten, "release claims")

    def mark_published(self, unproven: dict[str, Plan]) -> None:
        """Published, but no history item proves it: said so in the claims, so a retry does not publish again."""
        self.each(self._mark_published, unproven.keys(), unproven.values())

    def _mark_published(self, pk: str, written: Plan) -> None:
        held = {event_id: written.claims[event_id] for event_id in written.publish_ids}
        self._replace_own(pk, held, {event_id: replace(claim, holder=PUBLISHED) for event_id, claim in held.items()},
                          "mark claims published")

    def _replace_own(self, pk: str, held: dict[str, Claim], rewritten: dict[str, Claim], action: str) -> None:
        try:
            if not self.store.replace_claims(pk, rewritten, held, now_utc()):
                # Taken over (this run outlived its lease) or dropped as proven meanwhile: no longer this run's.
                logger.info("claims no longer held, left as they are", extra={"pk": pk, "action": action})
        except aws.AWS_ERRORS as error:
            log_aws_failure(action, error, len(rewritten))


def _whole_entities(wanted: dict[str, dict[str, str]]) -> Iterator[dict[str, dict[str, str]]]:
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
