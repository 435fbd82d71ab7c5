"""What the functions really log: the Powertools logger's JSON lines, captured in memory."""

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def json_logs(level: str = "WARNING") -> Iterator[io.StringIO]:
    """Point the shared logger's handler at a buffer (it keeps the stdout it was created with)."""
    from twilio_sink.observability import logger

    buffer = io.StringIO()
    previous_stream = logger.registered_handler.setStream(buffer)
    previous_level = logger.log_level
    logger.setLevel(level)
    try:
        yield buffer
    finally:
        logger.registered_handler.setStream(previous_stream)
        logger.setLevel(logging.getLevelName(previous_level))


def lines(buffer: io.StringIO, message: str | None = None) -> list[dict]:
    records = [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    return [record for record in records if message is None or record["message"] == message]
