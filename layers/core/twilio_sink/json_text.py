"""JSON as the sink reads and writes it: strict on the way in, compact on the way out. Imports nothing of the core."""

import json
import math
from typing import Any


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


def compact(value: Any) -> str:
    """The one JSON form the sink stores and publishes: no spaces, text as it is (not \\u-escaped)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
