"""The error of an input that retrying will never fix, and its reason codes (contract 4's `reason`).

Imports nothing of the core: every module that refuses an input stands on it.
"""

from enum import StrEnum


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
