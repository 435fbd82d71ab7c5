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
from .state import (
    ACCOUNT,
    CHECK_AFTER,
    EXPIRES_AT,
    STATE_SK,
    UNSETTLED,
    UPDATED_AT,
    Claim,
    DueEntity,
    EntityState,
    HistoryEntry,
    OperationMessage,
    StateWrite,
    history_sk,
)

BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
BATCH_RETRIES = 5
UNSETTLED_INDEX = "Unsettled"  # template.yaml: the state items due for reconciliation (state.py)
BY_OPERATION_INDEX = "ByOperation"  # template.yaml: the messages of a bulk send, by operation_id

_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


class Conflict(Exception):
    """The state item changed since it was read (or already outranks the write)."""

    def __init__(self, current: EntityState | None):
        super().__init__("state item changed since it was read")
        self.current = current


def to_item(attributes: dict[str, Any]) -> dict[str, Any]:
    return {name: _serialize(value) for name, value in attributes.items()}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserialize(value) for name, value in item.items()}


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

    # ---- reads -------------------------------------------------------------------------------

    def load_states(self, pks: Iterable[str]) -> dict[str, EntityState]:
        """Current states by pk (strongly consistent); absent entities are left out."""
        found: dict[str, EntityState] = {}
        for group in chunks(sorted(set(pks)), BATCH_GET_LIMIT):
            request = {self.table_name: {"Keys": [_state_key(pk) for pk in group], "ConsistentRead": True}}
            for item in self._batch_get(request):
                state = EntityState.of(from_item(item))
                found[state.pk] = state
        return found

    def recorded_accounts(self, pks: Iterable[str]) -> dict[str, str]:
        """The `account_sid` each entity's state item recorded, by pk (entities without one are left out).

        Eventually consistent and projected to the two attributes: an entity's account never changes.
        """
        found: dict[str, str] = {}
        for group in chunks(sorted(set(pks)), BATCH_GET_LIMIT):
            request = {self.table_name: {"Keys": [_state_key(pk) for pk in group],
                                         "ProjectionExpression": "#pk, #account",
                                         "ExpressionAttributeNames": {"#pk": "pk", "#account": ACCOUNT}}}
            for item in self._batch_get(request):
                record = from_item(item)
                if record.get(ACCOUNT):
                    found[record["pk"]] = record[ACCOUNT]
        return found

    def with_history(self, events: dict[str, dict[str, str]]) -> dict[str, set[str]]:
        """Which events have a history item: pk -> {event id: event time} in, pk -> those ids out.

        A claim's history item is written only after its notification was published, so its
        presence proves the claim published. Strongly consistent, as the state reads.
        """
        keys = [(pk, event_id, history_sk(event_time, event_id))
                for pk, wanted in events.items() for event_id, event_time in wanted.items()]
        found: dict[str, set[str]] = {pk: set() for pk in events}
        by_key = {(pk, sk): event_id for pk, event_id, sk in keys}
        for group in chunks(keys, BATCH_GET_LIMIT):
            request = {self.table_name: {"Keys": [to_item({"pk": pk, "sk": sk}) for pk, _, sk in group],
                                         "ConsistentRead": True, "ProjectionExpression": "pk, sk"}}
            for item in self._batch_get(request):
                record = from_item(item)
                found[record["pk"]].add(by_key[(record["pk"], record["sk"])])
        return found

    def entity(self, pk: str) -> tuple[EntityState | None, list[HistoryEntry]]:
        """An entity's state and its history in event time order: one Query on its pk."""
        items = self._all("query", KeyConditionExpression="#pk = :pk", ExpressionAttributeNames={"#pk": "pk"},
                          ExpressionAttributeValues=to_item({":pk": pk}), ConsistentRead=True)
        state = next((EntityState.of(item) for item in items if item["sk"] == STATE_SK), None)
        return state, [HistoryEntry.of(item) for item in items if item["sk"] != STATE_SK]

    def of_operation(self, operation_id: str) -> list[OperationMessage]:
        """The messages of a bulk send (the sparse ByOperation index, eventually consistent), by id."""
        return [OperationMessage.of(item) for item in self._all(
            "query", IndexName=BY_OPERATION_INDEX, KeyConditionExpression="#op = :op",
            ExpressionAttributeNames={"#op": "operation_id"}, ExpressionAttributeValues=to_item({":op": operation_id}))]

    def states(self, entity: str | None = None, account: str | None = None) -> list[EntityState]:
        """Every current state, of one entity and/or one account if given (a filtered Scan)."""
        conditions, names, values = ["#sk = :sk"], {"#sk": "sk"}, {":sk": STATE_SK}
        for attribute, wanted in (("entity", entity), (ACCOUNT, account)):
            if wanted:
                conditions.append(f"#{len(names)} = :{len(names)}")
                values[f":{len(names)}"] = wanted
                names[f"#{len(names)}"] = attribute
        return [EntityState.of(item) for item in self._all(
            "scan", FilterExpression=" AND ".join(conditions), ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item(values), ConsistentRead=True)]

    def unsettled(self, key: str, due_by: str, limit: int, start: dict[str, Any] | None = None
                  ) -> tuple[list[DueEntity], dict[str, Any] | None]:
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
        return ([DueEntity.of(from_item(item)) for item in response.get("Items", [])],
                response.get("LastEvaluatedKey"))

    def _all(self, operation: str, **kwargs: Any) -> list[dict[str, Any]]:
        """Every item of a Query or Scan, page after page."""
        items: list[dict[str, Any]] = []
        while True:
            page = getattr(self.client, operation)(TableName=self.table_name, **kwargs)
            items.extend(from_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _batch_get(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for attempt in range(BATCH_RETRIES):
            response = self.client.batch_get_item(RequestItems=request)
            yield from response.get("Responses", {}).get(self.table_name, [])
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return
            _backoff(attempt)
        raise PartialBatchError(f"BatchGetItem left {len(request[self.table_name]['Keys'])} keys unread")

    # ---- writes ------------------------------------------------------------------------------

    def save_state(self, pk: str, write: StateWrite) -> None:
        """One conditional write of the entity's state item; raises `Conflict` or `ItemTooLarge`.

        Every write must find the version it read, so the claims map is written whole; a write with
        a new winner must also raise the order key, which is the invariant itself: no write ever
        regresses a status.
        """
        try:
            if write.expected_version is None:
                item = {**write.attributes(), "pk": pk, "sk": STATE_SK, "order_key": write.order_key, "version": 1}
                self.client.put_item(
                    TableName=self.table_name,
                    Item=to_item(item),
                    ConditionExpression="attribute_not_exists(pk)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return
            attributes = write.attributes() | {"version": write.expected_version + 1}
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
            removes = [name for name in write.removes() if name not in attributes]
            names |= {f"#r{i}": name for i, name in enumerate(removes)}
            update = "SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(attributes)))
            if removes:
                update += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removes)))
            self.client.update_item(
                TableName=self.table_name,
                Key=_state_key(pk),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item(values),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self.client.exceptions.ConditionalCheckFailedException as error:
            item = error.response.get("Item")
            raise Conflict(EntityState.of(from_item(item)) if item else None) from None
        except ClientError as error:
            details = error.response.get("Error", {})
            if details.get("Code") == "ValidationException" and "size" in details.get("Message", ""):
                raise ItemTooLarge(details["Message"]) from None
            raise

    def reschedule_check(self, pk: str, version: int, check_after: str) -> bool:
        """Move an unsettled entity's next check to `check_after`, unless its state changed meanwhile."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_state_key(pk),
                UpdateExpression="SET #c = :c",
                # A state written since (a new status, perhaps final) keeps its own index attributes.
                ConditionExpression="#version = :version AND attribute_exists(#u)",
                ExpressionAttributeNames={"#c": CHECK_AFTER, "#version": "version", "#u": UNSETTLED},
                ExpressionAttributeValues=to_item({":c": check_after, ":version": version}),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def replace_claims(self, pk: str, claims: dict[str, Claim], held: dict[str, Claim], updated_at: str) -> bool:
        """Rewrite claims outside a state write, only while each is still as `held`.

        False, and nothing written, when one changed meanwhile: taken over by another carrier, or
        dropped by a later write because it is published. A run that outlived its lease can thus
        never rewrite a live holder's claim. The version moves on, so a concurrent writer that read
        the claims before re-reads them.
        """
        names = {"#claims": "claims", "#version": "version", "#updated": UPDATED_AT}
        names |= {f"#c{i}": event_id for i, event_id in enumerate(claims)}
        # Rewritten alone, a claim keeps its event time: the item's own may have moved.
        values: dict[str, Any] = {f":c{i}": claim.text() for i, claim in enumerate(claims.values())}
        values |= {":one": 1, ":updated": updated_at}
        conditions = []
        for i, event_id in enumerate(claims):
            texts = [f":h{i}_{j}" for j in range(2)]
            values |= dict(zip(texts, held[event_id].texts()))
            conditions.append(f"#claims.#c{i} IN ({', '.join(texts)})")
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_state_key(pk),
                UpdateExpression="SET " + ", ".join(f"#claims.#c{i} = :c{i}" for i in range(len(claims)))
                                 + ", #updated = :updated ADD #version :one",
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item(values),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def history_item(self, entry: HistoryEntry) -> dict[str, Any]:
        """An event's history item: in time order under the entity's pk, expiring after the retention.

        Every writer of history (both functions, the reconciler, redrive, replay, backfill) writes
        through this store, so each sets the same `expires_at` from its store's retention.
        """
        event = entry.event
        item = entry.attributes() | {"pk": event.pk, "sk": history_sk(event.event_time, event.event_id)}
        if self.history_retention_days:
            item[EXPIRES_AT] = int(time.time()) + self.history_retention_days * 86_400
        return item

    def put_history(self, entries: list[HistoryEntry]) -> None:
        """Idempotent puts of history items (each event has its own pk and sk)."""
        unique = list({(item["pk"], item["sk"]): item for item in map(self.history_item, entries)}.values())
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


def _state_key(pk: str) -> dict[str, Any]:
    return to_item({"pk": pk, "sk": STATE_SK})


def _backoff(attempt: int) -> None:
    time.sleep(min(0.05 * 2**attempt, 0.5))
