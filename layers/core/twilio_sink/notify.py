"""Publishing notifications to the SNS topic (contract 3): in order per entity, ten per request.

A batch's notifications are packed across entities into `PublishBatch` requests (ten entries,
256 KiB), each entity's notifications kept together and in order, so a batch of a thousand
changes costs about a hundred requests instead of one per entity. An entity with more than ten
notifications gets a chain of requests sent one after another; everything else runs concurrently.

A FIFO topic (its name ends in `.fifo`: SNS's own mark, so nothing else has to say so) gets each
entry's `MessageGroupId`, the entity, and `MessageDeduplicationId`, the change's identity: SNS then
delivers an entity's changes in order and drops a repeat of one within five minutes.
"""

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial

from .aws import AWS_ERRORS
from .json_text import compact
from .precedence import Change

PUBLISH_BATCH_LIMIT = 10
PUBLISH_BATCH_BYTES = 256 * 1024
# SNS's rule for MessageGroupId: 1-128 characters, ASCII letters, digits and punctuation.
_GROUP_ID = re.compile(r"[!-~]{1,128}")

@dataclass(frozen=True)
class Notification:
    """One message of contract 3: built here only, from an applied change and the status it replaced."""

    key: str  # the order key of the change it announces
    body: str  # JSON of contract 3
    attributes: dict[str, str]  # SNS message attributes: what subscribers' filter policies match


def notification(change: Change, previous_status: str | None) -> Notification:
    event = change.event
    body = {
        "entity": change.entity,
        "id": change.entity_id,
        "status": change.status,
        "previous_status": previous_status,
        "event_type": event.type,
        "event_id": event.id,
        "event_time": event.time_utc,
        "data": event.data,
    }
    attributes = {"entity": change.entity, "status": change.status, "event_type": event.type}
    if change.account_sid:
        # Lets an ISV route each subaccount's changes with a filter policy.
        attributes["account_sid"] = change.account_sid
    return Notification(key=change.order_key, body=compact(body), attributes=attributes)


Entry = tuple[str, Notification]  # (series: whose notifications must stay in order, notification)


@dataclass
class PublishOutcome:
    """Per series: the keys published (a prefix of its notifications, in order), or why it stopped."""

    published: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)

    def merge(self, other: "PublishOutcome") -> None:
        for series, keys in other.published.items():
            self.published.setdefault(series, []).extend(keys)
        self.errors |= other.errors


class LeaseOver(Exception):
    """The run's lease ended before this request could start: a taker may publish these claims now."""


class Notifier:
    def __init__(self, topic_arn: str, client):
        self.topic_arn = topic_arn
        self.client = client
        self.fifo = topic_arn.endswith(".fifo")

    def publish_in_order(self, by_entity: dict[str, list[Notification]],
                         run: Callable[[Callable, Iterable], Iterable] = map,
                         may_start: Callable[[], bool] = lambda: True) -> PublishOutcome:
        """Publish each entity's series of notifications in its order; `run` maps over independent jobs.

        A series stops at its first entry SNS refuses (or whose request fails), so that what is
        left is published later, in order. AWS failures are reported per series, not raised.
        Each request starts only if `may_start()` says so then (the caller's claims still hold).
        """
        outcome = PublishOutcome()
        for result in run(partial(self._send_chain, may_start=may_start), _pack(by_entity)):
            outcome.merge(result)
        return outcome

    def _send_chain(self, chain: list[list[Entry]], may_start: Callable[[], bool]) -> PublishOutcome:
        outcome = PublishOutcome()
        stopped: set[str] = set()
        for request in chain:
            entries = [(series, note) for series, note in request if series not in stopped]
            if not entries:
                continue
            if not may_start():
                for series, _ in entries:
                    outcome.errors.setdefault(series, LeaseOver())
                    stopped.add(series)
                continue
            try:
                succeeded = self._publish_batch(entries)
            except AWS_ERRORS as error:
                for series, _ in entries:
                    outcome.errors.setdefault(series, error)
                    stopped.add(series)
                continue
            for index, (series, note) in enumerate(entries):
                if series in stopped:
                    continue
                if index in succeeded:
                    outcome.published.setdefault(series, []).append(note.key)
                else:
                    outcome.errors[series] = RuntimeError("SNS refused a notification")
                    stopped.add(series)
        return outcome

    def _publish_batch(self, entries: list[Entry]) -> set[int]:
        response = self.client.publish_batch(
            TopicArn=self.topic_arn,
            PublishBatchRequestEntries=[self._entry(index, series, note) for index, (series, note) in enumerate(entries)],
        )
        return {int(entry["Id"]) for entry in response.get("Successful", [])}

    def _entry(self, index: int, series: str, notification: Notification) -> dict:
        entry = {
            "Id": str(index),
            "Message": notification.body,
            "MessageAttributes": {
                name: {"DataType": "String", "StringValue": value}
                for name, value in notification.attributes.items()
            },
        }
        if self.fifo:
            entry["MessageGroupId"] = message_group_id(series)
            entry["MessageDeduplicationId"] = deduplication_id(series, notification)
        return entry


def message_group_id(series: str) -> str:
    """The entity (`<entity>#<id>`) itself when SNS accepts it as a group id, else a digest of it."""
    return series if _GROUP_ID.fullmatch(series) else _digest(series)


def deduplication_id(series: str, notification: Notification) -> str:
    """The applied change's identity: its entity and order key (which ends in the event id).

    The same for every publish of that change (a retry, a take-over, a republish after a crash
    between publish and record), different for any other change: a digest, as SNS takes 128 characters.
    """
    return _digest(f"{series}|{notification.key}")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _size(notification: Notification) -> int:
    return len(notification.body.encode("utf-8")) + sum(
        len(name) + len(value.encode("utf-8")) for name, value in notification.attributes.items())


def _pack(by_entity: dict[str, list[Notification]]) -> list[list[list[Entry]]]:
    """Chains of requests: each chain's requests go in sequence, chains are independent.

    Series that fit in one request share requests (first fit, in the given order); a longer one
    is a chain of its own, ten entries (or 256 KiB) at a time.
    """
    chains: list[list[list[Entry]]] = []
    open_request: list[Entry] = []
    open_bytes = 0
    for series, notifications in by_entity.items():
        if not notifications:
            continue
        sizes = [_size(note) for note in notifications]
        if len(notifications) > PUBLISH_BATCH_LIMIT or sum(sizes) > PUBLISH_BATCH_BYTES:
            chains.append(_split(series, notifications, sizes))
            continue
        if len(open_request) + len(notifications) > PUBLISH_BATCH_LIMIT or open_bytes + sum(sizes) > PUBLISH_BATCH_BYTES:
            chains.append([open_request])
            open_request, open_bytes = [], 0
        open_request.extend((series, note) for note in notifications)
        open_bytes += sum(sizes)
    if open_request:
        chains.append([open_request])
    return chains


def _split(series: str, notifications: list[Notification], sizes: list[int]) -> list[list[Entry]]:
    requests: list[list[Entry]] = [[]]
    used = 0
    for note, size in zip(notifications, sizes):
        if requests[-1] and (len(requests[-1]) == PUBLISH_BATCH_LIMIT or used + size > PUBLISH_BATCH_BYTES):
            requests.append([])
            used = 0
        requests[-1].append((series, note))
        used += size
    return requests
