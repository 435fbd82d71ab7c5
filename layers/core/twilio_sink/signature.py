"""Twilio's request signature on webhook deliveries, checked with the `twilio` package.

Twilio appends `bodySHA256=<hex sha256 of the raw body>` to the sink URL and signs the full URL
(HMAC-SHA1 with the auth token, or HMAC-SHA256 with a SharedKey when the settings header says so).
`RequestValidator.validate` checks both the URL signature and the body hash, provided it gets the
raw body as a string and the exact URL Twilio called. Everything here fails closed.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from urllib.parse import parse_qs

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from twilio.request_validator import SIGNATURE_SETTINGS_HEADER, RequestValidator, get_signature_algorithm

from . import aws

SIGNATURE_HEADER = "x-twilio-signature"
SECRET_MAX_AGE_SECONDS = 300  # a rotated token is picked up within five minutes


class Rejected(Exception):
    """The request is not provably from Twilio."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Delivery:
    """A webhook request reduced to what the signature covers."""

    url: str
    body: bytes
    signature: str | None
    settings_header: str | None


def delivery(event: APIGatewayProxyEventV2, public_base_url: str = "") -> Delivery:
    """The URL Twilio called and the raw body, from an HTTP API (payload 2.0) event."""
    query = event.raw_query_string or ""
    if public_base_url:
        base = public_base_url.rstrip("/") + event.raw_path
    else:
        base = f"https://{event.request_context.domain_name}{event.raw_path}"
    body = event.body or ""
    if event.is_base64_encoded:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise Rejected("body_not_base64") from None
    else:
        raw = body.encode("utf-8", "surrogatepass")
    return Delivery(
        url=f"{base}?{query}" if query else base,
        body=raw,
        signature=event.get_header_value(SIGNATURE_HEADER),
        settings_header=event.get_header_value(SIGNATURE_SETTINGS_HEADER),
    )


def verify(request: Delivery, tokens: list[str]) -> str:
    """Return the body as text if any token proves the request came from Twilio, else raise."""
    if not request.signature:
        raise Rejected("missing_signature")
    if "bodySHA256" not in parse_qs(request.url.partition("?")[2]):
        # Without the hash only the URL would be signed and any body could ride on it.
        raise Rejected("missing_body_hash")
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected("body_not_utf8") from None
    algorithm = get_signature_algorithm(request.settings_header)
    for token in tokens:
        try:
            if RequestValidator(token).validate(request.url, text, request.signature, algorithm):
                return text
        except (TypeError, ValueError):
            raise Rejected("malformed_signature_input") from None
    raise Rejected("invalid_signature")


class TokenNotConfigured(Exception):
    """The secret holds no auth token yet (a fresh deploy): answer 503 so Twilio keeps retrying."""


def auth_tokens(secret_id: str) -> list[str]:
    """The current token, then the previous one during a rotation (contract 1's secret format).

    A JSON secret without `auth_token` (the template's placeholder) means "not configured".
    """
    value = aws.secrets().get(secret_id, max_age=SECRET_MAX_AGE_SECONDS)
    text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
    if text.lstrip().startswith("{"):
        fields = json.loads(text)
        tokens = [fields.get("auth_token"), fields.get("previous_auth_token")]
    else:
        tokens = [text]
    usable = [token.strip() for token in tokens if isinstance(token, str) and token.strip()]
    if not usable:
        raise TokenNotConfigured(f"secret {secret_id} holds no auth token")
    return usable
