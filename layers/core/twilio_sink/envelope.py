"""Decoding what arrives (Kinesis record bytes, webhook bodies) into CloudEvents.

Anything that cannot become a CloudEvent raises `Poison` with a short reason code: the pipeline
turns it into a dead letter instead of failing its neighbours.
"""

import json
import math
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

# Twilio events are a few kB, and Twilio caps a whole webhook batch at 64 kB, so no real event is
# larger. The state item holds the winning event and an outbox copy of each applied change: at
# this size several changes of one entity still fit DynamoDB's 400 KB item (what does not is
# dead-lettered as oversized by the pipeline), and a notification fits SNS's 256 KB.
MAX_EVENT_BYTES = 64_000
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")
# `https://<any host>/<Schema>/<version>`, sometimes with `.json`: Twilio uses several hosts (.dev., .stage.).
DATASCHEMA = re.compile(r"https?://[^/\s]+/(?P<name>[A-Za-z0-9_.-]+)/(?P<version>\d{1,6})(?:\.json)?")
# Identifiers end up in DynamoDB keys (2048/1024-byte limits) and metric dimensions: Twilio's are
# 34-character SIDs or UUIDs; a longer one is malformed, and must not make a write fail forever.
MAX_ID_CHARS = 256
Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]


class PoisonReason(StrEnum):
    UNDECODABLE = "undecodable"  # bytes that are not UTF-8
    NOT_JSON = "not_json"
    NOT_CLOUDEVENT = "not_cloudevent"
    INVALID_PAYLOAD = "invalid_payload"  # `data` does not fit its type's model
    OVERSIZED = "oversized"
    FOREIGN_ACCOUNT = "foreign_account"  # from a Twilio account this stack does not accept


class Poison(Exception):
    """An input that retrying will never fix."""

    def __init__(self, reason: PoisonReason, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class CloudEvent(BaseModel):
    """A CloudEvent 1.0 envelope as Twilio sends it; unknown attributes are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: str = Field(min_length=1)
    type: Identifier
    source: str = Field(min_length=1)
    id: Identifier
    # Optional: several of Twilio's documented examples omit it; the family's own timestamp is used then.
    time: AwareDatetime | None = None
    dataschema: str | None = None
    datacontenttype: str | None = None
    data: dict[str, Any]

    @field_validator("time", mode="before")
    @classmethod
    def _time_is_rfc3339(cls, value: Any) -> Any:
        # pydantic alone would also read numbers and numeric strings as epoch seconds.
        if value is not None and (not isinstance(value, str) or not RFC3339.fullmatch(value)):
            raise ValueError("time must be an RFC 3339 timestamp with a time zone")
        return value

    @field_validator("time")
    @classmethod
    def _time_has_a_utc_equivalent(cls, value: datetime | None) -> datetime | None:
        return None if value is None else in_utc(value)

    @field_validator("data", mode="before")
    @classmethod
    def _data_may_be_json_text(cls, value: Any) -> Any:
        # Twilio's Kinesis sink writes `data` as a JSON-encoded string; the webhook sends an object.
        if isinstance(value, str):
            try:
                return strict_json(value)
            except NotJsonNumber as error:
                # Not a ValueError for pydantic to wrap: the event is poison for its payload, as a whole.
                raise Poison(PoisonReason.INVALID_PAYLOAD, f"data: not strict JSON: {error}") from None
            except ValueError as error:
                raise ValueError(f"data is a string that is not JSON ({error})") from None
            except RecursionError:
                raise ValueError("data is nested too deeply") from None
        return value

    @property
    def time_utc(self) -> str:
        """Fixed-width ISO-8601 UTC with microseconds: sorts as text in the order of time."""
        if self.time is None:
            raise ValueError("the event has no time (the registry supplies the family's timestamp)")
        return self.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    @property
    def named_schema(self) -> tuple[str, int] | None:
        """(schema name, version) read from `dataschema`, or None if it names none."""
        match = DATASCHEMA.fullmatch(self.dataschema.strip()) if self.dataschema else None
        return (match["name"], int(match["version"])) if match else None


def in_utc(moment: datetime) -> datetime:
    """The same instant in UTC; a ValueError if it has none (year 1 at +01:00, say)."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("time is out of the representable range") from None


def parse_timestamp(value: Any) -> datetime | None:
    """A payload timestamp as Twilio writes them, or None if `value` is none of these forms.

    RFC 3339 text (nanoseconds accepted, cut to microseconds), epoch milliseconds (A2P payloads'
    integers) or RFC 1123 text (Voice's `requestDateCreated`).
    """
    try:
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return in_utc(datetime.fromtimestamp(value / 1000, UTC)) if 0 < value < 10**14 else None
        if not isinstance(value, str):
            return None
        if RFC3339.fullmatch(value):
            # Python 3.13 reads nanoseconds (cut to microseconds), and `Z`, but not a lowercase `z`.
            return in_utc(datetime.fromisoformat(value.replace("z", "Z")))
        parsed = parsedate_to_datetime(value)
        return in_utc(parsed) if parsed.tzinfo else None
    except (ValueError, TypeError, OverflowError, IndexError):
        return None


def decode_text(raw: bytes) -> str:
    if len(raw) > MAX_EVENT_BYTES:
        raise Poison(PoisonReason.OVERSIZED, f"{len(raw)} bytes, more than the {MAX_EVENT_BYTES} accepted")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Poison(PoisonReason.UNDECODABLE, f"not UTF-8 text: {error}") from None


def strict_json(text: str) -> Any:
    """`json.loads` without JavaScript's NaN/Infinity, nor numbers too large for a float: Python reads
    both, but what was stored or published with them would not be JSON (contracts 2 and 3)."""
    return json.loads(text, parse_constant=_not_a_number, parse_float=_finite_float)


class NotJsonNumber(ValueError):
    """NaN, Infinity, or a number that overflows to infinity."""


def _not_a_number(literal: str) -> Any:
    raise NotJsonNumber(f"{literal} is not a JSON number")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise NotJsonNumber("a number overflows a 64-bit float")
    return value


def parse_json(text: str) -> Any:
    try:
        value = strict_json(text)
    except NotJsonNumber as error:
        raise Poison(PoisonReason.INVALID_PAYLOAD, f"not strict JSON: {error}") from None
    except ValueError as error:
        raise Poison(PoisonReason.NOT_JSON, f"not JSON: {error}") from None
    except RecursionError:
        raise Poison(PoisonReason.NOT_JSON, "JSON nested too deeply") from None
    if SURROGATE_ESCAPE.search(text):
        # `"\ud800"` is valid JSON but no text: nothing could store, publish or dead-letter it as UTF-8.
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise Poison(PoisonReason.UNDECODABLE, "a string holds a lone surrogate escape") from None
    return value


def to_cloudevent(obj: Any) -> CloudEvent:
    if not isinstance(obj, dict):
        raise Poison(PoisonReason.NOT_CLOUDEVENT, f"a CloudEvent is a JSON object, got {type(obj).__name__}")
    if len(json.dumps(obj, separators=(",", ":"))) > MAX_EVENT_BYTES:
        raise Poison(PoisonReason.OVERSIZED, f"event larger than the {MAX_EVENT_BYTES} bytes accepted")
    try:
        return CloudEvent.model_validate(obj)
    except ValidationError as error:
        raise Poison(PoisonReason.NOT_CLOUDEVENT, describe(error)) from None
    except RecursionError:
        raise Poison(PoisonReason.NOT_CLOUDEVENT, "event nested too deeply") from None


def cloudevent_from_record(raw: bytes) -> CloudEvent:
    """One Kinesis record holds one CloudEvent."""
    return to_cloudevent(parse_json(decode_text(raw)))


def split_webhook_body(text: str) -> list[Any]:
    """A webhook body is a JSON array of CloudEvents, or (batching off) a single object."""
    body = parse_json(text)
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        return [body]
    raise Poison(PoisonReason.NOT_CLOUDEVENT, f"body is JSON {type(body).__name__}, not an array or object")


def describe(error: ValidationError) -> str:
    """Human words for a validation error, naming fields but never echoing their values."""
    parts = []
    for item in error.errors(include_input=False, include_url=False):
        # Field names are identifiers; a dict's keys are data (a phone number, say) and are not named.
        where = ".".join(str(p) if isinstance(p, int) or str(p).isidentifier() else "[key]"
                         for p in item["loc"]) or "(root)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def now_utc() -> str:
    return iso_utc(datetime.now(UTC))


def iso_utc(moment: datetime) -> str:
    """The fixed-width form every stored time has (sorts as text in the order of time)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
