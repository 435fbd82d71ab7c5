"""The status table (DynamoDB). Knows items, keys, versions and conditions — nothing of Twilio.

Per entity (`pk`): one `state` item, the current status, written only under a condition (it must
still be the version that was read, and the new order key must be higher), so concurrent writers
can never move a status backwards; and one history item per accepted event.
"""

import time
from collections.abc import Iterable, Iterator
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from .aws import PartialBatchError

STATE_SK = "state"
BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
TRANSACT_WRITE_LIMIT = 100
BATCH_RETRIES = 5

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


def chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class ItemTooLarge(Exception):
    """The item would exceed DynamoDB's 400 KB limit: writing it again can never succeed."""


class StatusStore:
    def __init__(self, table_name: str, client):
        self.table_name = table_name
        self.client = client

    def load_states(self, pks: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Current state items by pk (strongly consistent); absent entities are left out."""
        found: dict[str, dict[str, Any]] = {}
        for group in chunks(sorted(set(pks)), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [to_item({"pk": pk, "sk": STATE_SK}) for pk in group],
                    "ConsistentRead": True,
                }
            }
            for attempt in range(BATCH_RETRIES):
                response = self.client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    record = from_item(item)
                    found[record["pk"]] = record
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                _backoff(attempt)
            else:
                raise PartialBatchError(f"BatchGetItem left {len(request[self.table_name]['Keys'])} keys unread")
        return found

    def save_state(
        self,
        pk: str,
        attributes: dict[str, Any],
        order_key: str,
        expected_version: int | None,
        new_pending: dict[str, Any],
    ) -> int:
        """Write the entity's new state; returns its new version, or raises `Conflict` or `ItemTooLarge`.

        `new_pending` (key -> notification) is added to the item's outbox of notifications
        not yet published, in the same write, so a crash before publishing loses nothing.
        """
        try:
            if expected_version is None:
                item = {**attributes, "pk": pk, "sk": STATE_SK, "order_key": order_key, "version": 1,
                        "pending": new_pending}
                self.client.put_item(
                    TableName=self.table_name,
                    Item=to_item(item),
                    ConditionExpression="attribute_not_exists(pk)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return 1
            names = {f"#a{i}": name for i, name in enumerate(attributes)}
            values = {f":a{i}": value for i, value in enumerate(attributes.values())}
            sets = [f"#a{i} = :a{i}" for i in range(len(attributes))]
            for i, (entry, body) in enumerate(new_pending.items()):
                names[f"#p{i}"] = entry
                values[f":p{i}"] = body
                sets.append(f"#pending.#p{i} = :p{i}")
            names |= {"#order_key": "order_key", "#version": "version", "#pending": "pending"}
            values |= {":order_key": order_key, ":expected": expected_version, ":version": expected_version + 1}
            sets += ["#order_key = :order_key", "#version = :version"]
            self.client.update_item(
                TableName=self.table_name,
                Key=to_item({"pk": pk, "sk": STATE_SK}),
                UpdateExpression="SET " + ", ".join(sets),
                # The order-key condition is the invariant itself: no write ever regresses a status.
                ConditionExpression="#version = :expected AND #order_key < :order_key",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item(values),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return expected_version + 1
        except self.client.exceptions.ConditionalCheckFailedException as error:
            item = error.response.get("Item")
            raise Conflict(from_item(item) if item else None) from None
        except ClientError as error:
            details = error.response.get("Error", {})
            if details.get("Code") == "ValidationException" and "size" in details.get("Message", ""):
                raise ItemTooLarge(details["Message"]) from None
            raise

    def clear_pending(self, published: dict[str, list[str]]) -> set[str]:
        """Drop published notifications from the outboxes of up to `TRANSACT_WRITE_LIMIT` entities.

        One TransactWriteItems request carries every entity's REMOVE (unconditional, so nothing
        but a concurrent write of the same item can cancel it), instead of one UpdateItem each.
        Entities whose own action was refused are left out and the rest retried once; returns
        the pks whose outbox could not be cleared.
        """
        actions = {pk: self._remove_pending(pk, keys) for pk, keys in published.items() if keys}
        left: set[str] = set()
        for _ in range(2):
            if not actions:
                break
            try:
                self.client.transact_write_items(TransactItems=list(actions.values()))
                return left
            except self.client.exceptions.TransactionCanceledException as error:
                reasons = error.response.get("CancellationReasons") or []
                refused = {pk for pk, reason in zip(actions, reasons) if reason.get("Code") not in (None, "None")}
                if not refused:
                    raise
                left |= refused
                actions = {pk: action for pk, action in actions.items() if pk not in refused}
        return left | set(actions)

    def _remove_pending(self, pk: str, keys: list[str]) -> dict[str, Any]:
        names = {"#pending": "pending"} | {f"#p{i}": entry for i, entry in enumerate(keys)}
        return {"Update": {
            "TableName": self.table_name,
            "Key": to_item({"pk": pk, "sk": STATE_SK}),
            "UpdateExpression": "REMOVE " + ", ".join(f"#pending.#p{i}" for i in range(len(keys))),
            "ExpressionAttributeNames": names,
        }}

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
