"""The status table (DynamoDB). Knows items, keys, versions and conditions — nothing of Twilio.

Per entity (`pk`): one `state` item, the current status, written only under a condition (it must
still be the version that was read, and the new order key must be higher), so concurrent writers
can never move a status backwards; and one history item per accepted event.
"""

import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from .aws import PartialBatchError

STATE_SK = "state"
UPDATED_AT = "updated_at"  # on the state item: when its status or claims were last written
EXPIRES_AT = "expires_at"  # the table's TTL attribute (epoch seconds), on history items only
BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
BATCH_RETRIES = 5
# The Unsettled index (template.yaml): state items whose status is not final, by the time they are
# due for a check (reconcile.py). Sparse: the state write removes both attributes at a final status.
UNSETTLED_INDEX = "Unsettled"
UNSETTLED = "unsettled"
CHECK_AFTER = "check_after"
# Entities of one kind are spread over several index partitions: one partition takes about 1,000
# writes/s, and a throttled index throttles the table's own writes.
UNSETTLED_SHARDS = 8

_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


class Conflict(Exception):
    """The state item changed since it was read (or already outranks the write)."""

    def __init__(self, current: dict[str, Any] | None):
        super().__init__("state item changed since it was read")
        self.current = current


def to_item(attributes: dict[str, Any]) -> dict[str, Any]:
    return {name: _serialize(value) for name, value in attributes.items()}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserialize(value) for name, value in item.items()}


def history_key(item: dict[str, Any]) -> tuple[str, str]:
    return item["pk"], item["sk"]


def unsettled_keys(entity: str) -> list[str]:
    return [f"{entity}#{shard}" for shard in range(UNSETTLED_SHARDS)]


def unsettled_attributes(entity: str, pk: str, check_after: str) -> dict[str, str]:
    """What puts a state item into the Unsettled index, due for a check at `check_after` (ISO UTC)."""
    shard = zlib.crc32(pk.encode()) % UNSETTLED_SHARDS
    return {UNSETTLED: f"{entity}#{shard}", CHECK_AFTER: check_after}


def history_sk(event_time: str, event_id: str) -> str:
    """History items sort after the state item and in event time order under the entity's pk."""
    return f"event#{event_time}#{event_id}"


@dataclass(frozen=True)
class StateWrite:
    attributes: dict[str, Any]  # the winner's attributes; only `updated_at` when only claims change
    order_key: str | None  # the winner's order key; None when only claims change
    expected_version: int | None  # the version read; None: the item must not exist yet
    claims: dict[str, str]  # the item's whole claims map after the write
    remove: tuple[str, ...] = ()  # attributes the new state no longer has (it leaves a sparse index)


def chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class ItemTooLarge(Exception):
    """The item would exceed DynamoDB's 400 KB limit: writing it again can never succeed."""


class StatusStore:
    def __init__(self, table_name: str, client, history_retention_days: int = 0):
        self.table_name = table_name
        self.client = client
        self.history_retention_days = history_retention_days  # 0: history items never expire

    def load_states(self, pks: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Current state items by pk (strongly consistent); absent entities are left out."""
        found: dict[str, dict[str, Any]] = {}
        for group in chunks(sorted(set(pks)), BATCH_GET_LIMIT):
            request = {self.table_name: {"Keys": [to_item({"pk": pk, "sk": STATE_SK}) for pk in group],
                                         "ConsistentRead": True}}
            for item in self._batch_get(request):
                record = from_item(item)
                found[record["pk"]] = record
        return found

    def recorded_accounts(self, pks: Iterable[str]) -> dict[str, str]:
        """The `account_sid` each entity's state item recorded, by pk (entities without one are left out).

        Eventually consistent and projected to the two attributes: an entity's account never changes.
        """
        found: dict[str, str] = {}
        for group in chunks(sorted(set(pks)), BATCH_GET_LIMIT):
            request = {self.table_name: {"Keys": [to_item({"pk": pk, "sk": STATE_SK}) for pk in group],
                                         "ProjectionExpression": "#pk, #account",
                                         "ExpressionAttributeNames": {"#pk": "pk", "#account": "account_sid"}}}
            for item in self._batch_get(request):
                record = from_item(item)
                if record.get("account_sid"):
                    found[record["pk"]] = record["account_sid"]
        return found

    def _batch_get(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for attempt in range(BATCH_RETRIES):
            response = self.client.batch_get_item(RequestItems=request)
            yield from response.get("Responses", {}).get(self.table_name, [])
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return
            _backoff(attempt)
        raise PartialBatchError(f"BatchGetItem left {len(request[self.table_name]['Keys'])} keys unread")

    def published(self, claims: dict[str, dict[str, str]]) -> dict[str, set[str]]:
        """Which claims are published: pk -> {event id: event time} in, pk -> the ids whose history item exists out.

        A history item is written only after its event's notification was published, so its
        presence settles the claim. Strongly consistent, as the state reads.
        """
        keys = [(pk, event_id, history_sk(event_time, event_id))
                for pk, wanted in claims.items() for event_id, event_time in wanted.items()]
        found: dict[str, set[str]] = {pk: set() for pk in claims}
        by_key = {(pk, sk): event_id for pk, event_id, sk in keys}
        for group in chunks(keys, BATCH_GET_LIMIT):
            request = {self.table_name: {"Keys": [to_item({"pk": pk, "sk": sk}) for pk, _, sk in group],
                                         "ConsistentRead": True, "ProjectionExpression": "pk, sk"}}
            for item in self._batch_get(request):
                record = from_item(item)
                found[record["pk"]].add(by_key[(record["pk"], record["sk"])])
        return found

    def save_state(self, pk: str, write: "StateWrite") -> None:
        """One conditional write of the entity's state item; raises `Conflict` or `ItemTooLarge`.

        Every write must find the version it read, so the claims map is written whole; a write with
        a new winner must also raise the order key, which is the invariant itself: no write ever
        regresses a status.
        """
        claims = write.claims
        try:
            if write.expected_version is None:
                item = {**write.attributes, "pk": pk, "sk": STATE_SK, "order_key": write.order_key, "version": 1,
                        "claims": claims}
                self.client.put_item(
                    TableName=self.table_name,
                    Item=to_item(item),
                    ConditionExpression="attribute_not_exists(pk)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return
            attributes = write.attributes | {"claims": claims, "version": write.expected_version + 1}
            condition = "#version = :expected"
            values: dict[str, Any] = {":expected": write.expected_version}
            if write.order_key is not None:
                attributes["order_key"] = write.order_key
                condition += " AND #order_key < :order_key"
            names = {f"#a{i}": name for i, name in enumerate(attributes)} | {"#version": "version"}
            values |= {f":a{i}": value for i, value in enumerate(attributes.values())}
            if write.order_key is not None:
                names["#order_key"] = "order_key"
                values[":order_key"] = write.order_key
            removes = [name for name in write.remove if name not in attributes]
            names |= {f"#r{i}": name for i, name in enumerate(removes)}
            update = "SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(attributes)))
            if removes:
                update += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removes)))
            self.client.update_item(
                TableName=self.table_name,
                Key=to_item({"pk": pk, "sk": STATE_SK}),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item(values),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self.client.exceptions.ConditionalCheckFailedException as error:
            item = error.response.get("Item")
            raise Conflict(from_item(item) if item else None) from None
        except ClientError as error:
            details = error.response.get("Error", {})
            if details.get("Code") == "ValidationException" and "size" in details.get("Message", ""):
                raise ItemTooLarge(details["Message"]) from None
            raise

    def unsettled(self, key: str, due_by: str, limit: int, start: dict[str, Any] | None = None
                  ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of the Unsettled index under `key`, due by `due_by`, the longest due first."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": UNSETTLED_INDEX,
            "KeyConditionExpression": "#u = :u AND #c <= :c",
            "ExpressionAttributeNames": {"#u": UNSETTLED, "#c": CHECK_AFTER},
            "ExpressionAttributeValues": to_item({":u": key, ":c": due_by}),
            "Limit": limit,
        }
        if start:
            kwargs["ExclusiveStartKey"] = start
        response = self.client.query(**kwargs)
        return [from_item(item) for item in response.get("Items", [])], response.get("LastEvaluatedKey")

    def postpone_check(self, pk: str, version: int, check_after: str) -> bool:
        """Move an unsettled entity's next check to `check_after`, unless its state changed meanwhile."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=to_item({"pk": pk, "sk": STATE_SK}),
                UpdateExpression="SET #c = :c",
                # A state written since (a new status, perhaps final) keeps its own index attributes.
                ConditionExpression="#version = :version AND attribute_exists(#u)",
                ExpressionAttributeNames={"#c": CHECK_AFTER, "#version": "version", "#u": UNSETTLED},
                ExpressionAttributeValues=to_item({":c": check_after, ":version": version}),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def replace_claims(self, pk: str, claims: dict[str, str], held: dict[str, tuple[str, ...]],
                       updated_at: str) -> bool:
        """Rewrite claims outside a state write, only while each is still as `held` (its possible texts).

        False, and nothing written, when one changed meanwhile: taken over by another carrier, or
        dropped by a later write because it is settled. A run that outlived its lease can thus never
        rewrite a live holder's claim. The version moves on, so a concurrent writer that read the
        claims before re-reads them.
        """
        names = {"#claims": "claims", "#version": "version", "#updated": UPDATED_AT}
        names |= {f"#c{i}": event_id for i, event_id in enumerate(claims)}
        values: dict[str, Any] = {f":c{i}": text for i, text in enumerate(claims.values())}
        values |= {":one": 1, ":updated": updated_at}
        conditions = []
        for i, event_id in enumerate(claims):
            texts = [f":h{i}_{j}" for j in range(len(held[event_id]))]
            values |= dict(zip(texts, held[event_id]))
            conditions.append(f"#claims.#c{i} IN ({', '.join(texts)})")
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=to_item({"pk": pk, "sk": STATE_SK}),
                UpdateExpression="SET " + ", ".join(f"#claims.#c{i} = :c{i}" for i in range(len(claims)))
                                 + ", #updated = :updated ADD #version :one",
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item(values),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def history_item(self, pk: str, event_time: str, event_id: str, attributes: dict[str, Any]) -> dict[str, Any]:
        """An event's history item: in time order under the entity's pk, expiring after the retention.

        Every writer of history (both functions, the reconciler, redrive, replay, backfill) builds its
        items here, so each sets the same `expires_at` from its store's retention.
        """
        item = attributes | {"pk": pk, "sk": history_sk(event_time, event_id)}
        if self.history_retention_days:
            item[EXPIRES_AT] = int(time.time()) + self.history_retention_days * 86_400
        return item

    def put_history(self, items: list[dict[str, Any]]) -> None:
        """Idempotent puts of history items (each has its own pk and sk)."""
        unique = list({history_key(item): item for item in items}.values())
        for group in chunks(unique, BATCH_WRITE_LIMIT):
            request = {self.table_name: [{"PutRequest": {"Item": to_item(item)}} for item in group]}
            for attempt in range(BATCH_RETRIES):
                response = self.client.batch_write_item(RequestItems=request)
                request = response.get("UnprocessedItems") or {}
                if not request:
                    break
                _backoff(attempt)
            else:
                raise PartialBatchError(f"BatchWriteItem left {len(request[self.table_name])} items unwritten")


def _backoff(attempt: int) -> None:
    time.sleep(min(0.05 * 2**attempt, 0.5))
