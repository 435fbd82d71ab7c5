"""Decoding what arrives (Kinesis record bytes, webhook bodies) into CloudEvents.

Anything that cannot become a CloudEvent raises `Poison` with a short reason code: the pipeline
turns it into a dead letter instead of failing its neighbours.
"""

import json
import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from .json_text import NotJsonNumber, strict_json
from .poison import Poison, PoisonReason
from .times import RFC3339, in_utc, iso_utc

# Twilio events are a few kB, and Twilio caps a whole webhook batch at 64 kB, so no real event is
# larger. The state item holds the winning event and an outbox copy of each applied change: at
# this size several changes of one entity still fit DynamoDB's 400 KB item (what does not is
# dead-lettered as oversized by the pipeline), and a notification fits SNS's 256 KB.
MAX_EVENT_BYTES = 64_000
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# `https://<any host>/<Schema>/<version>`, sometimes with `.json`: Twilio uses several hosts (.dev., .stage.).
DATASCHEMA = re.compile(r"https?://[^/\s]+/(?P<name>[A-Za-z0-9_.-]+)/(?P<version>\d{1,6})(?:\.json)?")
# Identifiers end up in DynamoDB keys (2048/1024-byte limits) and metric dimensions: Twilio's are
# 34-character SIDs or UUIDs; a longer one is malformed, and must not make a write fail forever.
MAX_ID_CHARS = 256
Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]


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
        return iso_utc(self.time)

    @property
    def named_schema(self) -> tuple[str, int] | None:
        """(schema name, version) read from `dataschema`, or None if it names none."""
        match = DATASCHEMA.fullmatch(self.dataschema.strip()) if self.dataschema else None
        return (match["name"], int(match["version"])) if match else None


def decode_text(raw: bytes) -> str:
    if len(raw) > MAX_EVENT_BYTES:
        raise Poison(PoisonReason.OVERSIZED, f"{len(raw)} bytes, more than the {MAX_EVENT_BYTES} accepted")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Poison(PoisonReason.UNDECODABLE, f"not UTF-8 text: {error}") from None


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
