"""Time as the sink reads and writes it: Twilio's timestamp forms in, one fixed-width UTC text out.

Imports nothing of the core.
"""

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


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


def now_utc() -> str:
    return iso_utc(datetime.now(UTC))

def iso_utc(moment: datetime) -> str:
    """The fixed-width form every stored time has (sorts as text in the order of time)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
