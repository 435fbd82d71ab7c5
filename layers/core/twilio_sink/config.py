"""Settings the template passes to the functions as environment variables."""

import os
from functools import cache
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .sids import parse_account_sids


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    table_name: str = Field(alias="STATUS_TABLE_NAME", min_length=1)
    topic_arn: str = Field(alias="TOPIC_ARN", min_length=1)
    dead_letter_queue_url: str = Field(alias="DEAD_LETTER_QUEUE_URL", min_length=1)
    # The Twilio accounts whose events are accepted (comma-separated SIDs, the main account first); none
    # accepted fails loudly.
    twilio_account_sids: tuple[str, ...] = Field(alias="TWILIO_ACCOUNT_SIDS", min_length=1)
    # Stream consumer only: whether a stream event naming no account is applied (under the only accepted
    # account, if there is one) or refused as foreign_account (accounts.py).
    stream_events_without_account: Literal["accept", "refuse"] = Field("accept", alias="STREAM_EVENTS_WITHOUT_ACCOUNT")
    # Webhook only: the Secrets Manager secret holding the Twilio auth token(s).
    auth_token_secret_arn: str = Field("", alias="AUTH_TOKEN_SECRET_ARN")
    # Reconciler only: the Secrets Manager secret holding Twilio API keys per account (reconcile/client.py).
    twilio_api_keys_secret_arn: str = Field("", alias="TWILIO_API_KEYS_SECRET_ARN")
    # Reconciler only: another endpoint for Twilio's REST API (a local stand-in); empty: Twilio's own.
    twilio_api_base_url: str = Field("", alias="TWILIO_API_BASE_URL")
    # Webhook only: the public URL Twilio calls (custom domain), when it differs from the request's own.
    public_base_url: str = Field("", alias="PUBLIC_BASE_URL")
    # Webhook only: answer 503 (Twilio retries) after this many seconds of work. Twilio gives up at
    # 5 s, counted from its request: what is left covers a cold start and the network.
    webhook_deadline_seconds: float = Field(3.0, alias="WEBHOOK_DEADLINE_SECONDS", gt=0, le=4.5)
    # History items expire this many days after they were written (DynamoDB TTL); 0 keeps them forever.
    history_retention_days: int = Field(0, alias="HISTORY_RETENTION_DAYS", ge=0)

    @field_validator("twilio_account_sids", mode="before")
    @classmethod
    def _comma_separated_sids(cls, value: object) -> object:
        return parse_account_sids(value) if isinstance(value, str) else value

    @field_validator("public_base_url")
    @classmethod
    def _scheme_host_and_base_path_only(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
                raise ValueError("PUBLIC_BASE_URL must be scheme://host[:port][/base path], without query")
        return value


@cache
def settings() -> Settings:
    """Read once per container; a missing variable fails loudly on the first event."""
    return Settings.model_validate(dict(os.environ))
