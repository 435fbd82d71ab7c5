"""A fast, honest stand-in for the AWS APIs the core calls, plugged in at botocore's `before-send`.

botocore still validates, serialises, signs and parses every request and response — the CPU the
benchmark must count — but instead of going to the network the request is answered here, after
sleeping the configured latency (per service), from a small in-memory model:

- DynamoDB: BatchGetItem, PutItem and UpdateItem (conditions enforced, `ALL_OLD` returned on a
  failed condition), BatchWriteItem, TransactWriteItems; the expression grammar the core uses
  (`attribute_[not_]exists`, comparisons joined by AND, SET/REMOVE of attributes and map entries).
  Anything outside that grammar is refused loudly rather than answered wrongly. Every request is
  charged the capacity units DynamoDB would charge (see `Capacity`).
- SNS: Publish, PublishBatch (query protocol, XML answers). SQS: SendMessageBatch (JSON protocol).
- Secrets Manager: GetSecretValue.

The sleep happens in the calling thread, as real network waits do, so concurrency is modelled
honestly. tests/bench/test_fake_aws.py checks these answers against moto's for the same calls.
"""

import base64
import json
import math
import re
import threading
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from hashlib import md5
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from botocore.awsrequest import AWSResponse

DEFAULT_LATENCY = {"dynamodb": 0.008, "sns": 0.015, "sqs": 0.010, "secrets-manager": 0.010}
SNS_XMLNS = "http://sns.amazonaws.com/doc/2010-03-31/"


class _Body:
    """The raw stream botocore reads a response body from."""

    def __init__(self, data: bytes):
        self._data = data

    def stream(self, **_):
        yield self._data


class ServiceError(Exception):
    def __init__(self, code: str, message: str, status: int = 400, **extra: Any):
        super().__init__(message)
        self.code, self.message, self.status, self.extra = code, message, status, extra


# ---------------------------------------------------------------------------------------- DynamoDB

Key = tuple[str, ...]
PATH = r"(?:#?[A-Za-z_][A-Za-z0-9_]*)(?:\.#?[A-Za-z_][A-Za-z0-9_]*)*"
COMPARISON = re.compile(rf"^\s*({PATH}|:[A-Za-z0-9_]+)\s*(=|<>|<=|>=|<|>)\s*({PATH}|:[A-Za-z0-9_]+)\s*$")
FUNCTION = re.compile(rf"^\s*(attribute_exists|attribute_not_exists)\(\s*({PATH})\s*\)\s*$")
MEMBERSHIP = re.compile(rf"^\s*({PATH})\s+IN\s*\(\s*(:[A-Za-z0-9_]+(?:\s*,\s*:[A-Za-z0-9_]+)*)\s*\)\s*$",
                        re.IGNORECASE)
SET_CLAUSE = re.compile(rf"^\s*({PATH})\s*=\s*(:[A-Za-z0-9_]+)\s*$")
ADD_CLAUSE = re.compile(rf"^\s*({PATH})\s+(:[A-Za-z0-9_]+)\s*$")


def _comparable(value: dict) -> tuple[str, Any] | None:
    (kind, raw), = value.items()
    if kind == "N":
        return kind, Decimal(raw)
    if kind in ("S", "B"):
        return kind, raw
    return None


class Expression:
    """Names, values and path resolution shared by conditions and updates."""

    def __init__(self, names: dict[str, str] | None, values: dict[str, dict] | None):
        self.names = names or {}
        self.values = values or {}

    def path(self, text: str) -> list[str]:
        parts = []
        for part in text.split("."):
            if part.startswith("#"):
                if part not in self.names:
                    raise ServiceError("ValidationException", "An expression attribute name used in the document path is not defined; "
                                                             f"attribute name: {part}")
                part = self.names[part]
            parts.append(part)
        return parts

    def operand(self, text: str, item: dict) -> dict | None:
        if text.startswith(":"):
            if text not in self.values:
                raise ServiceError("ValidationException", "An expression attribute value used in expression is not defined; "
                                                         f"attribute value: {text}")
            return self.values[text]
        return _get(item, self.path(text))


def _get(item: dict, path: list[str]) -> dict | None:
    value: dict | None = {"M": item}
    for part in path:
        if value is None or "M" not in value:
            return None
        value = value["M"].get(part)
    return value


def condition_holds(expression: str, item: dict | None, names, values) -> bool:
    """Evaluate the AND-joined comparisons, IN lists and attribute_(not_)exists checks the core writes."""
    context = Expression(names, values)
    item = item or {}
    for clause in re.split(r"\s+AND\s+", expression.strip(), flags=re.IGNORECASE):
        if match := FUNCTION.match(clause):
            present = _get(item, context.path(match[2])) is not None
            if present != (match[1] == "attribute_exists"):
                return False
        elif match := MEMBERSHIP.match(clause):
            value = context.operand(match[1], item)
            if value is None or value not in [context.operand(name.strip(), item) for name in match[2].split(",")]:
                return False
        elif match := COMPARISON.match(clause):
            left, right = context.operand(match[1], item), context.operand(match[3], item)
            if left is None or right is None:
                return False
            a, b = _comparable(left), _comparable(right)
            if match[2] in ("=", "<>"):
                equal = left == right
                if equal != (match[2] == "="):
                    return False
                continue
            if a is None or b is None or a[0] != b[0]:
                return False
            if not {"<": a[1] < b[1], "<=": a[1] <= b[1], ">": a[1] > b[1], ">=": a[1] >= b[1]}[match[2]]:
                return False
        else:
            raise ServiceError("ValidationException", f"fake_aws: unsupported condition clause {clause!r}")
    return True


def apply_update(expression: str, item: dict, names, values) -> None:
    """Apply `SET path = :value, …`, `ADD path :number, …` and `REMOVE path, …` sections in place."""
    context = Expression(names, values)
    sections = re.split(r"\b(SET|ADD|REMOVE)\b", expression.strip(), flags=re.IGNORECASE)
    if sections[0].strip():
        raise ServiceError("ValidationException", f"fake_aws: unsupported update expression {expression!r}")
    for action, body in zip(sections[1::2], sections[2::2]):
        for clause in body.split(","):
            if action.upper() == "SET":
                match = SET_CLAUSE.match(clause)
                if not match:
                    raise ServiceError("ValidationException", f"fake_aws: unsupported SET clause {clause!r}")
                *parents, last = context.path(match[1])
                container = _get(item, parents) if parents else {"M": item}
                if container is None or "M" not in container:
                    raise ServiceError("ValidationException", "The document path provided in the update expression is invalid for update")
                container["M"][last] = context.operand(match[2], item)
            elif action.upper() == "ADD":
                match = ADD_CLAUSE.match(clause)
                added = context.operand(match[2], item) if match else None
                if not match or added is None or "N" not in added:
                    raise ServiceError("ValidationException", f"fake_aws: unsupported ADD clause {clause!r}")
                *parents, last = context.path(match[1])
                container = _get(item, parents) if parents else {"M": item}
                if container is None or "M" not in container:
                    raise ServiceError("ValidationException", "The document path provided in the update expression is invalid for update")
                before = container["M"].get(last, {"N": "0"})
                container["M"][last] = {"N": str(Decimal(before["N"]) + Decimal(added["N"]))}
            else:
                *parents, last = context.path(clause.strip())
                container = _get(item, parents) if parents else {"M": item}
                if container is not None and "M" in container:
                    container["M"].pop(last, None)


# ---------------------------------------------------------------------------------------- capacity

def attribute_size(value: dict) -> int:
    """Bytes of one attribute value by DynamoDB's item-size rules."""
    (kind, raw), = value.items()
    if kind == "S":
        return len(raw.encode("utf-8"))
    if kind == "N":  # about one byte per two significant digits, plus one
        digits = raw.lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(base64.b64decode(raw))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":  # 3 bytes, plus per element its name, its value and 1 byte
        return 3 + sum(len(name.encode("utf-8")) + attribute_size(element) + 1 for name, element in raw.items())
    if kind == "L":
        return 3 + sum(attribute_size(element) + 1 for element in raw)
    return sum(attribute_size({kind[0]: element}) for element in raw)  # SS, NS, BS


def item_size(item: dict | None) -> int:
    """An item's size: the lengths of its attribute names plus the sizes of their values."""
    return sum(len(name.encode("utf-8")) + attribute_size(value) for name, value in (item or {}).items())


OUTBOX_ATTRIBUTES = ("claims", "pending")  # what a state item carries about notifications (today's, main's)


def item_kind(item: dict) -> str:
    return "history" if item.get("sk", {}).get("S", "").startswith("event#") else "state"


class Capacity:
    """Capacity units by DynamoDB's documented rules, per (API, item kind, unit).

    Writes: 1 WRU per KB (rounded up) of the item, per item; PutItem and UpdateItem are charged on
    the larger of the item before and after; a write whose condition fails is charged all the same;
    transactional writes twice. Reads: 1 RRU per 4 KB (rounded up) per item for a strongly consistent
    read, half for an eventually consistent one, also for an item that does not exist. The share of a
    state item's write due to its outbox (claims, or an older version's pending bodies) is counted as
    kind `outbox`: what the same write would cost less without those attributes.
    """

    def __init__(self):
        self.units: Counter[tuple[str, str, str]] = Counter()
        self.lock = threading.Lock()

    def write(self, api: str, before: dict | None, after: dict | None, factor: int = 1) -> None:
        item = after or before or {}
        kind = item_kind(item)
        full = _write_units(max(item_size(before), item_size(after)))
        charges = {kind: full}
        if kind == "state":
            slim = _write_units(max(item_size(_without_outbox(before)), item_size(_without_outbox(after))))
            charges = {"state": slim, "outbox": full - slim}
        with self.lock:
            for charged_kind, units in charges.items():
                if units:
                    self.units[(api, charged_kind, "WRU")] += units * factor

    def read(self, api: str, key: dict, item: dict | None, consistent: bool) -> None:
        units = math.ceil(max(1, item_size(item)) / 4096) * (1 if consistent else 0.5)
        with self.lock:
            self.units[(api, item_kind(item or key), "RRU")] += units


def _write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def _without_outbox(item: dict | None) -> dict | None:
    return None if item is None else {name: value for name, value in item.items() if name not in OUTBOX_ATTRIBUTES}


class Items(dict):
    """Items kept as compact JSON text: a 10,000-event benchmark would otherwise measure mostly this model's dicts."""

    def __getitem__(self, key: Key) -> dict:
        return json.loads(super().__getitem__(key))

    def get(self, key: Key, default=None):
        return self[key] if key in self else default  # noqa: SIM401 - dict.get would skip the JSON decoding

    def __setitem__(self, key: Key, item: dict) -> None:
        super().__setitem__(key, json.dumps(item, separators=(",", ":")))


@dataclass
class Table:
    key_names: tuple[str, ...]
    items: Items = field(default_factory=Items)

    def key_of(self, item: dict) -> Key:
        try:
            return tuple(json.dumps(item[name], sort_keys=True) for name in self.key_names)
        except KeyError:
            raise ServiceError("ValidationException", "The provided key element does not match the schema") from None


class DynamoDB:
    def __init__(self):
        self.tables: dict[str, Table] = {}
        self.lock = threading.Lock()
        self.capacity = Capacity()

    def create_table(self, name: str, key_names: tuple[str, ...] = ("pk", "sk")) -> None:
        self.tables[name] = Table(key_names)

    def table(self, name: str) -> Table:
        if name not in self.tables:
            raise ServiceError("ResourceNotFoundException", "Requested resource not found")
        return self.tables[name]

    def handle(self, operation: str, request: dict) -> dict:
        handler = getattr(self, operation, None)
        if handler is None:
            raise ServiceError("UnknownOperationException", f"fake_aws: DynamoDB {operation} not modelled")
        with self.lock:
            return handler(request)

    def BatchGetItem(self, request: dict) -> dict:
        responses = {}
        for name, spec in request["RequestItems"].items():
            table = self.table(name)
            found = []
            for key in spec["Keys"]:
                item = table.items.get(table.key_of(key))
                self.capacity.read("BatchGetItem", key, item, spec.get("ConsistentRead", False))
                if item is not None:
                    found.append(item)
            responses[name] = found
        return {"Responses": responses, "UnprocessedKeys": {}}

    def _check(self, old: dict | None, request: dict) -> None:
        expression = request.get("ConditionExpression")
        if expression and not condition_holds(expression, old, request.get("ExpressionAttributeNames"),
                                              request.get("ExpressionAttributeValues")):
            extra = {"Item": old} if old and request.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" else {}
            raise ServiceError("ConditionalCheckFailedException", "The conditional request failed", **extra)

    def PutItem(self, request: dict, api: str = "PutItem", factor: int = 1) -> dict:
        table = self.table(request["TableName"])
        key = table.key_of(request["Item"])
        old = table.items.get(key)
        self.capacity.write(api, old, request["Item"], factor)  # charged whether the condition holds or not
        self._check(old, request)
        table.items[key] = request["Item"]
        return {}

    def UpdateItem(self, request: dict, api: str = "UpdateItem", factor: int = 1) -> dict:
        table = self.table(request["TableName"])
        key = table.key_of(request["Key"])
        old = table.items.get(key)
        item = table.items.get(key) if old else dict(request["Key"])  # a fresh copy to update
        apply_update(request["UpdateExpression"], item, request.get("ExpressionAttributeNames"),
                     request.get("ExpressionAttributeValues"))
        self.capacity.write(api, old, item, factor)
        self._check(old, request)
        table.items[key] = item
        return {}

    def BatchWriteItem(self, request: dict) -> dict:
        for name, writes in request["RequestItems"].items():
            if len(writes) > 25:
                raise ServiceError("ValidationException", "Too many items requested for the BatchWriteItem call")
            table = self.table(name)
            for write in writes:
                if "PutRequest" in write:
                    item = write["PutRequest"]["Item"]
                    self.capacity.write("BatchWriteItem", table.items.get(table.key_of(item)), item)
                    table.items[table.key_of(item)] = item
                else:
                    key = table.key_of(write["DeleteRequest"]["Key"])
                    self.capacity.write("BatchWriteItem", table.items.get(key), None)
                    table.items.pop(key, None)
        return {"UnprocessedItems": {}}

    def TransactWriteItems(self, request: dict) -> dict:
        actions = request["TransactItems"]
        if len(actions) > 100:
            raise ServiceError("ValidationException", "Member must have length less than or equal to 100")
        touched, reasons, failed = set(), [], False
        for action in actions:
            (kind, spec), = action.items()
            table = self.table(spec["TableName"])
            key = table.key_of(spec.get("Key") or spec.get("Item"))
            if (spec["TableName"], key) in touched:
                raise ServiceError("ValidationException", "Transaction request cannot include multiple operations on one item")
            touched.add((spec["TableName"], key))
            try:
                self._check(table.items.get(key), spec)
                reasons.append({"Code": "None"})
            except ServiceError as error:
                failed = True
                reasons.append({"Code": "ConditionalCheckFailed", "Message": error.message, **error.extra})
        if failed:
            summary = ", ".join(reason["Code"] for reason in reasons)
            raise ServiceError("TransactionCanceledException",
                               f"Transaction cancelled, please refer cancellation reasons for specific reasons [{summary}]",
                               CancellationReasons=reasons)
        for action in actions:
            (kind, spec), = action.items()
            getattr(self, {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}[kind])(
                {k: v for k, v in spec.items() if k != "ConditionExpression"}, "TransactWriteItems", 2)
        return {}

    def DeleteItem(self, request: dict, api: str = "DeleteItem", factor: int = 1) -> dict:
        table = self.table(request["TableName"])
        key = table.key_of(request["Key"])
        old = table.items.get(key)
        self.capacity.write(api, old, None, factor)
        self._check(old, request)
        table.items.pop(key, None)
        return {}


# ---------------------------------------------------------------------------------------- SNS, SQS

def _attributes(form: dict[str, str], prefix: str) -> dict[str, str]:
    attributes, index = {}, 1
    while f"{prefix}.entry.{index}.Name" in form:
        attributes[form[f"{prefix}.entry.{index}.Name"]] = form.get(f"{prefix}.entry.{index}.Value.StringValue", "")
        index += 1
    return attributes


class SNS:
    def __init__(self):
        self.topics: set[str] = set()
        self.published: list[dict] = []  # {"Message", "MessageAttributes"} in publish order
        self.lock = threading.Lock()

    def create_topic(self, arn: str) -> None:
        self.topics.add(arn)

    def handle(self, operation: str, form: dict[str, str]) -> str:
        if form.get("TopicArn") not in self.topics:
            raise ServiceError("NotFound", "Topic does not exist", status=404)
        if operation == "Publish":
            message_id = self._publish(form["Message"], _attributes(form, "MessageAttributes"))
            return f"<PublishResult><MessageId>{message_id}</MessageId></PublishResult>"
        if operation != "PublishBatch":
            raise ServiceError("InvalidAction", f"fake_aws: SNS {operation} not modelled")
        entries, index = [], 1
        while f"PublishBatchRequestEntries.member.{index}.Id" in form:
            prefix = f"PublishBatchRequestEntries.member.{index}"
            entries.append((form[f"{prefix}.Id"], form[f"{prefix}.Message"],
                            _attributes(form, f"{prefix}.MessageAttributes")))
            index += 1
        if not entries:
            raise ServiceError("EmptyBatchRequest", "The batch request doesn't contain any entries")
        if len(entries) > 10:
            raise ServiceError("TooManyEntriesInBatchRequest", "The batch request contains more entries than permissible")
        if len({entry[0] for entry in entries}) != len(entries):
            raise ServiceError("BatchEntryIdsNotDistinct", "Two or more batch entries in the request have the same Id")
        if sum(len(message.encode()) for _, message, _ in entries) > 262_144:
            raise ServiceError("BatchRequestTooLong", "The length of all the messages put together is more than the limit")
        members = "".join(
            f"<member><Id>{escape(entry_id)}</Id><MessageId>{self._publish(message, attributes)}</MessageId></member>"
            for entry_id, message, attributes in entries
        )
        return f"<PublishBatchResult><Successful>{members}</Successful><Failed/></PublishBatchResult>"

    def _publish(self, message: str, attributes: dict[str, str]) -> str:
        with self.lock:
            self.published.append({"Message": message, "MessageAttributes": attributes})
        return str(uuid.uuid4())


class SQS:
    def __init__(self):
        self.queues: dict[str, list[str]] = {}
        self.lock = threading.Lock()

    def create_queue(self, url: str) -> None:
        self.queues[url] = []

    def handle(self, operation: str, request: dict) -> dict:
        if operation != "SendMessageBatch":
            raise ServiceError("UnsupportedOperation", f"fake_aws: SQS {operation} not modelled")
        if request["QueueUrl"] not in self.queues:
            raise ServiceError("AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.")
        entries = request["Entries"]
        if len(entries) > 10:
            raise ServiceError("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", "Maximum number of entries per request are 10.")
        successful = []
        with self.lock:
            for entry in entries:
                self.queues[request["QueueUrl"]].append(entry["MessageBody"])
                successful.append({"Id": entry["Id"], "MessageId": str(uuid.uuid4()),
                                   "MD5OfMessageBody": md5(entry["MessageBody"].encode()).hexdigest()})
        return {"Successful": successful, "Failed": []}


# ---------------------------------------------------------------------------------------- the hook

class FakeAws:
    """Answers botocore requests for the services above; counts requests and its own CPU."""

    def __init__(self, latency: dict[str, float] | None = None):
        self.latency = DEFAULT_LATENCY | (latency or {})
        self.dynamodb = DynamoDB()
        self.sns = SNS()
        self.sqs = SQS()
        self.secrets: dict[str, str] = {}
        self.requests: Counter[str] = Counter()  # "Service.Operation" -> count
        self.cpu_seconds = 0.0  # CPU spent in this model (not the client's), to subtract from totals
        self._lock = threading.Lock()

    def attach(self, client) -> None:
        """Route every request of this boto3 client to the fake."""
        client.meta.events.register_first(f"before-send.{client.meta.service_model.service_id.hyphenize()}",
                                          self._answer)

    def _answer(self, request, **_) -> AWSResponse:
        started = time.thread_time()
        service = _service_of(request)
        try:
            status, headers, body = self._dispatch(service, request)
        finally:
            spent = time.thread_time() - started
            with self._lock:
                self.cpu_seconds += spent
        time.sleep(self.latency.get(service, 0.0))
        return AWSResponse(request.url, status, headers, _Body(body))

    def _dispatch(self, service: str, request) -> tuple[int, dict, bytes]:
        body = request.body or b""
        if hasattr(body, "read"):
            body = body.read()
        if isinstance(body, str):
            body = body.encode()
        request_id = str(uuid.uuid4())
        if service == "sns":
            form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
            operation = form.get("Action", "")
            self._count("SNS", operation)
            try:
                result = self.sns.handle(operation, form)
                text = (f'<{operation}Response xmlns="{SNS_XMLNS}">{result}<ResponseMetadata><RequestId>'
                        f"{request_id}</RequestId></ResponseMetadata></{operation}Response>")
                return 200, {"x-amzn-requestid": request_id, "content-type": "text/xml"}, text.encode()
            except ServiceError as error:
                text = (f'<ErrorResponse xmlns="{SNS_XMLNS}"><Error><Type>Sender</Type><Code>{error.code}</Code>'
                        f"<Message>{escape(error.message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>")
                return error.status, {"x-amzn-requestid": request_id, "content-type": "text/xml"}, text.encode()
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        operation = target.rsplit(".", 1)[-1]
        payload = json.loads(body or b"{}")
        name, model, content_type = {
            "dynamodb": ("DynamoDB", self.dynamodb, "application/x-amz-json-1.0"),
            "sqs": ("SQS", self.sqs, "application/x-amz-json-1.0"),
            "secrets-manager": ("SecretsManager", self, "application/x-amz-json-1.1"),
        }[service]
        self._count(name, operation)
        try:
            status, answer = 200, model.handle(operation, payload)
        except ServiceError as error:
            prefix = "com.amazonaws.dynamodb.v20120810#" if service == "dynamodb" else ""
            status, answer = error.status, {"__type": prefix + error.code, "message": error.message, **error.extra}
        data = json.dumps(answer, separators=(",", ":")).encode()
        headers = {"x-amzn-requestid": request_id, "content-type": content_type}
        if service == "dynamodb":
            headers["x-amz-crc32"] = str(zlib.crc32(data) & 0xFFFFFFFF)
        return status, headers, data

    def handle(self, operation: str, request: dict) -> dict:
        """Secrets Manager: GetSecretValue of a secret created with `create_secret`."""
        if operation != "GetSecretValue":
            raise ServiceError("InvalidRequestException", f"fake_aws: Secrets Manager {operation} not modelled")
        arn = request["SecretId"]
        if arn not in self.secrets:
            raise ServiceError("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
        return {"ARN": arn, "Name": arn.rsplit(":", 1)[-1], "VersionId": "00000000-0000-0000-0000-000000000001",
                "SecretString": self.secrets[arn], "VersionStages": ["AWSCURRENT"], "CreatedDate": 1.7e9}

    def forget_data(self) -> None:
        """Empty the tables, published messages and queues (keeps them defined): repeated runs start alike."""
        for table in self.dynamodb.tables.values():
            table.items.clear()
        self.sns.published.clear()
        for messages in self.sqs.queues.values():
            messages.clear()

    def create_secret(self, arn: str, value: str) -> None:
        self.secrets[arn] = value

    def _count(self, service: str, operation: str) -> None:
        with self._lock:
            self.requests[f"{service}.{operation}"] += 1


def _service_of(request) -> str:
    host = request.url.split("://", 1)[-1].split("/", 1)[0]
    prefix = host.split(".", 1)[0]
    return {"secretsmanager": "secrets-manager"}.get(prefix, prefix)
