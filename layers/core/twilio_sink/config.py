"""Settings the template passes to the functions as environment variables."""

import os
from functools import cache

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    table_name: str = Field(alias="STATUS_TABLE_NAME", min_length=1)
    topic_arn: str = Field(alias="TOPIC_ARN", min_length=1)
    dead_letter_queue_url: str = Field(alias="DEAD_LETTER_QUEUE_URL", min_length=1)
    # Webhook only: the Secrets Manager secret holding the Twilio auth token(s).
    auth_token_secret_arn: str = Field("", alias="AUTH_TOKEN_SECRET_ARN")
    # Webhook only: the public URL Twilio calls (custom domain), when it differs from the request's own.
    public_base_url: str = Field("", alias="PUBLIC_BASE_URL")


@cache
def settings() -> Settings:
    """Read once per container; a missing variable fails loudly on the first event."""
    return Settings.model_validate(dict(os.environ))
