"""Dead letters (contract 4): what retrying will not fix goes to an SQS queue with its reason."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .json_text import compact

# SQS takes 256 KiB per request; the raw text is cut well below that and the cut is flagged
# (Kinesis records can still be re-read from the stream by their sequence number).
MAX_RAW_CHARS = 100_000
MAX_BATCH_BYTES = 240_000
SEND_BATCH_LIMIT = 10


# How an event came in (received.Received.door), kept as `source` in dead letters and history items
# (contracts 2 and 4): the two sinks, or a correction of the reconciler or backfill.
Door = Literal["kinesis", "webhook", "reconciler", "backfill"]


class DeadLetter(BaseModel):
    # Built at the first dead letter, which most invocations never have (not at each cold start).
    model_config = ConfigDict(defer_build=True)

    reason: str
    detail: str
    source: Door
    raw: str
    raw_truncated: bool = False
    received_at: str
    event_id: str | None = None
    event_type: str | None = None
    origin: dict[str, Any] = {}  # Kinesis coordinates or webhook request, to find the original

    @classmethod
    def build(cls, raw: str, **fields: Any) -> "DeadLetter":
        return cls(raw=raw[:MAX_RAW_CHARS], raw_truncated=len(raw) > MAX_RAW_CHARS, **fields)

    def to_message(self) -> str:
        return compact(self.model_dump(mode="json"))


class DeadLetterQueue:
    def __init__(self, queue_url: str, client):
        self.queue_url = queue_url
        self.client = client

    def send(self, letters: list[DeadLetter]) -> set[int]:
        """Send all letters; returns the indexes (into `letters`) that SQS accepted."""
        sent: set[int] = set()
        for group in _by_size([(i, letter.to_message()) for i, letter in enumerate(letters)]):
            response = self.client.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(index), "MessageBody": body} for index, body in group],
            )
            sent |= {int(entry["Id"]) for entry in response.get("Successful", [])}
        return sent


def _by_size(messages: list[tuple[int, str]]):
    group: list[tuple[int, str]] = []
    size = 0
    for index, body in messages:
        length = len(body.encode("utf-8"))
        if group and (size + length > MAX_BATCH_BYTES or len(group) == SEND_BATCH_LIMIT):
            yield group
            group, size = [], 0
        group.append((index, body))
        size += length
    if group:
        yield group

