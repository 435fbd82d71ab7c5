"""Twilio's request signature on webhook deliveries, checked with the `twilio` package.

Twilio appends `bodySHA256=<hex sha256 of the raw body>` to the sink URL and signs the full URL
(HMAC-SHA1 with the auth token, or HMAC-SHA256 with a SharedKey when the settings header says so).
`RequestValidator.validate` checks both the URL signature and the body hash, provided it gets the
raw body as a string and the exact URL Twilio called. Rebuilding that URL behind API Gateway is the
delicate part (`signed_urls`). Everything here fails closed: whatever is missing, malformed or makes
the validator raise is a `Rejected` with a reason code.
"""

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent, APIGatewayProxyEventV2
from twilio.request_validator import (
    HMAC_SHA1,
    HMAC_SHA256,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from . import aws
from .sids import ACCOUNT_SID

SIGNATURE_HEADER = "x-twilio-signature"
BODY_HASH_PARAMETER = "bodySHA256"
SUPPORTED_ALGORITHMS = (HMAC_SHA1, HMAC_SHA256)
SECRET_MAX_AGE_SECONDS = 300  # a rotated token is picked up within five minutes

# REST API (payload 1.0) events carry the query decoded, so the text Twilio signed must be re-encoded.
# These are the encodings a sink URL's query is commonly written in; each is tried (they are cheap).
_QUERY_ENCODINGS = (
    partial(quote, safe=""),  # RFC 3986: everything but unreserved characters percent-encoded
    partial(quote, safe="!$'()*+,;:@/?"),  # as typed by hand: only what would break the query encoded
    partial(quote_plus, safe=""),  # HTML-form style: spaces as '+'
)

ProxyEvent = APIGatewayProxyEvent | APIGatewayProxyEventV2


class Rejected(Exception):
    """The request is not provably from Twilio."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Delivery:
    """A webhook request reduced to what the signature covers."""

    urls: tuple[str, ...]  # the URL Twilio called; several candidates only when the query had to be rebuilt
    body: bytes
    signature: str | None
    settings_header: str | None

    @property
    def checked_url(self) -> str:
        """The URL without its query, for rejection logs (enough to spot a wrong host, stage or base path)."""
        return self.urls[0].partition("?")[0] if self.urls else ""


@dataclass(frozen=True)
class SigningKeys:
    """The secrets a delivery may be signed with (contract 1's secret, extended with SharedKeys)."""

    auth_tokens: tuple[str, ...] = ()  # current first, then the previous one during a rotation
    shared_keys: dict[str, str] = field(default_factory=dict)  # SharedKey id -> its secret
    accounts: dict[str, str] = field(default_factory=dict)  # account SID -> its auth token (ISV subaccounts)

    def for_request(self, settings_header: str | None) -> tuple[tuple[str, str | None], ...]:
        """(key, the account it belongs to or None): the SharedKey named by the settings header when
        we hold it, else every auth token."""
        key_id = _setting(settings_header, "key")
        if key_id in self.shared_keys:
            return ((self.shared_keys[key_id], None),)
        return tuple((token, None) for token in self.auth_tokens) + tuple(
            (token, account) for account, token in self.accounts.items())


@dataclass(frozen=True)
class Verified:
    """A delivery proven to come from Twilio."""

    body: bytes
    account: str | None  # the account whose own token signed it (`accounts` in the secret), else None


def delivery(event: ProxyEvent, public_base_url: str = "") -> Delivery:
    """The URL Twilio called and the raw body, from an HTTP API (2.0) or REST API (1.0) event."""
    try:
        urls = signed_urls(event, public_base_url)
        body = _raw_body(event)
        signature = _header(event, SIGNATURE_HEADER)
        settings_header = _header(event, SIGNATURE_SETTINGS_HEADER)
    except Rejected:
        raise
    except (AttributeError, KeyError, TypeError, ValueError):
        # API Gateway never sends such an event; whatever did is not Twilio.
        raise Rejected("malformed_request") from None
    return Delivery(urls=urls, body=body, signature=signature, settings_header=settings_header)


def signed_urls(event: ProxyEvent, public_base_url: str = "") -> tuple[str, ...]:
    """Every URL Twilio may have signed for this request (one, unless a 1.0 query had to be rebuilt).

    HTTP API: `rawPath` (with the stage prefix of a named stage; none for `$default`) and
    `rawQueryString` exactly as sent. REST API: `requestContext.path` (it has the stage, `path`
    does not) and the query rebuilt from the decoded parameters. Behind a custom domain the
    configured public base URL replaces scheme, host and base path.
    """
    context = event.request_context
    if isinstance(event, APIGatewayProxyEventV2):
        called_path = event.raw_path
        queries: tuple[str, ...] = (event.raw_query_string or "",)
    else:
        called_path = event.request_context.path
        queries = _rebuilt_queries(event)
    if not isinstance(called_path, str) or not called_path.startswith("/"):
        raise Rejected("malformed_request")
    base = _public_url(public_base_url, called_path, context.stage) if public_base_url else _own_url(
        context.domain_name, called_path)
    return tuple(dict.fromkeys(f"{base}?{query}" if query else base for query in queries))


def verify(request: Delivery, keys: Callable[[], SigningKeys]) -> Verified:
    """The raw body (and the account that signed it) if one of the keys proves the request came from
    Twilio, else raise. Each key is compared in constant time by the `twilio` package.

    `keys` is called only for a request complete enough to check: unsigned noise is rejected (403)
    without reading the secret, even while the secret is unusable (which answers 503).
    """
    if not request.signature:
        raise Rejected("missing_signature")
    if not request.urls:
        raise Rejected("malformed_request")
    try:
        body_hashes = parse_qs(urlsplit(request.urls[0]).query).get(BODY_HASH_PARAMETER)
    except ValueError:
        raise Rejected("malformed_signature_input") from None
    if not body_hashes:
        # Without the hash only the URL would be signed and any body could ride on it.
        raise Rejected("missing_body_hash")
    algorithm = get_signature_algorithm(request.settings_header).upper()
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise Rejected("unsupported_signature_algorithm")
    try:
        text: str | None = request.body.decode("utf-8")
    except UnicodeDecodeError:
        text = None  # still checkable: signed but not text is a dead letter (400), not a forgery
    candidates = keys().for_request(request.settings_header)
    try:
        for key, account in candidates:
            validator = RequestValidator(key)
            for url in request.urls:
                if _valid(validator, url, request, text, body_hashes[0], algorithm):
                    return Verified(request.body, account)
    except (TypeError, ValueError):
        raise Rejected("malformed_signature_input") from None
    if not _hash_matches(request.body, body_hashes[0]):
        raise Rejected("body_hash_mismatch")  # the body is not the one Twilio hashed
    raise Rejected("invalid_signature")  # wrong token, or not the URL Twilio called


def _valid(validator: RequestValidator, url: str, request: Delivery, text: str | None, body_hash: str,
           algorithm: str) -> bool:
    if text is not None:
        # The string body makes the validator check bodySHA256 as well as the URL's signature.
        return validator.validate(url, text, request.signature, algorithm)
    # The validator hashes only text, so bytes that are not UTF-8 are hashed here; the URL's
    # signature (no parameters for a JSON delivery) is still the validator's.
    return validator.validate(url, {}, request.signature, algorithm) and _hash_matches(request.body, body_hash)


def _hash_matches(body: bytes, body_hash: str) -> bool:
    # compare_digest refuses non-ASCII text, and a hex digest never holds any.
    return body_hash.isascii() and hmac.compare_digest(hashlib.sha256(body).hexdigest(), body_hash)


def _own_url(domain_name: str | None, called_path: str) -> str:
    if not isinstance(domain_name, str) or not domain_name or any(c in domain_name for c in "/?#@ "):
        raise Rejected("malformed_request")
    return f"https://{domain_name}{called_path}"


def _public_url(public_base_url: str, called_path: str, stage: str | None) -> str:
    """The configured base URL + the path inside the API (base path mapping and stage taken off).

    Whether API Gateway leaves the mapping's base path (or a stage) in the event's path depends on
    the API type and mapping; stripping what is present covers every combination.
    """
    base = public_base_url.rstrip("/")
    path = _without_prefix(called_path, urlsplit(base).path)
    if isinstance(stage, str) and stage and stage != "$default":
        path = _without_prefix(path, "/" + stage)
    return base + path


def _without_prefix(path: str, prefix: str) -> str:
    if prefix and (path == prefix or path.startswith(prefix + "/")):
        return path[len(prefix):]
    return path


def _rebuilt_queries(event: APIGatewayProxyEvent) -> tuple[str, ...]:
    """The query text of a 1.0 event, re-encoded each common way, with bodySHA256 last as Twilio appends it.

    Order within a repeated name is kept; the order of interleaved repeated names is lost by API
    Gateway and cannot be rebuilt (documented in docs/webhook.md).
    """
    parameters = event.get("multiValueQueryStringParameters") or {
        name: [value] for name, value in (event.get("queryStringParameters") or {}).items()}
    pairs = [(name, value) for name, values in parameters.items() if name != BODY_HASH_PARAMETER
             for value in values]
    pairs += [(BODY_HASH_PARAMETER, value) for value in parameters.get(BODY_HASH_PARAMETER, [])]
    return tuple(dict.fromkeys("&".join(f"{encode(name)}={encode(value)}" for name, value in pairs)
                               for encode in _QUERY_ENCODINGS))


def _raw_body(event: ProxyEvent) -> bytes:
    body = event.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise Rejected("malformed_request")
    if event.get("isBase64Encoded") is True:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise Rejected("body_not_base64") from None
    try:
        return body.encode("utf-8")
    except UnicodeEncodeError:
        raise Rejected("malformed_request") from None  # lone surrogates: not text anyone sent


def _header(event: ProxyEvent, name: str) -> str | None:
    value = (event.headers or {}).get(name)  # case-insensitive in Powertools v3
    if value is not None and not isinstance(value, str):
        raise Rejected("malformed_request")
    return value


def _setting(settings_header: str | None, name: str) -> str | None:
    """One `name=value` of the X-Twilio-Webhooks-Signature-Settings header."""
    for part in (settings_header or "").split(","):
        key, separator, value = part.partition("=")
        if separator and key.strip() == name and value.strip():
            return value.strip()
    return None


def source_ip(event: ProxyEvent) -> str | None:
    """The caller's address, for rejection logs (Twilio calls from 35.90.102.128/25)."""
    try:
        if isinstance(event, APIGatewayProxyEventV2):
            return event.request_context.http.source_ip
        return event.request_context.identity.source_ip
    except (AttributeError, KeyError, TypeError):
        return None


class TokenNotConfigured(Exception):
    """The secret holds no usable key (a fresh deploy, or a value of the wrong shape): answer 503 so
    Twilio keeps retrying. Its message never quotes the secret."""


# What one key may look like: visible ASCII, no spaces (Twilio's auth tokens are 32 hex digits).
_KEY = re.compile(r"[!-~]+")
_TWILIO_AUTH_TOKEN = re.compile(r"[0-9a-fA-F]{32}")


def signing_keys(secret_id: str) -> SigningKeys:
    """The keys in the secret (see `parse_signing_keys`), re-read at most every five minutes."""
    try:
        return parse_signing_keys(aws.secrets().get(secret_id, max_age=SECRET_MAX_AGE_SECONDS))
    except TokenNotConfigured as error:
        raise TokenNotConfigured(f"secret {secret_id}: {error}") from None  # its name, never its value


def parse_signing_keys(value: object) -> SigningKeys:
    """The keys in a secret's value (contract 1), failing closed on every other shape.

    Usable: the token itself, as text; or a JSON object with `auth_token`, optionally
    `previous_auth_token` during a rotation, `accounts` ({"AC…": "<token>"}, one per subaccount) and
    `shared_keys` ({"<SharedKey id>": "<secret>"}). Anything else — empty, binary, JSON that is not
    an object (`null`, `""`, `["tok"]`, numbers), an object with no usable key (the template's
    placeholder) — is "not configured": were it taken as a key, whoever guessed it could sign.
    """
    if isinstance(value, bytes | bytearray):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise TokenNotConfigured("the secret is binary, not UTF-8 text") from None  # no byte of it quoted
    if not isinstance(value, str):
        raise TokenNotConfigured("the secret is not text")
    text = value.strip()
    if text.startswith("{"):
        return _keys_from_object(_json_or_none(text))
    if _TWILIO_AUTH_TOKEN.fullmatch(text):
        return SigningKeys(auth_tokens=(text,))  # even when its digits happen to read as a JSON number
    if not text or _json_or_none(text) is not _NOT_JSON:
        raise TokenNotConfigured("the secret is empty or JSON other than an object")
    if not _KEY.fullmatch(text):
        raise TokenNotConfigured("the secret is not a single token (it holds spaces or control characters)")
    return SigningKeys(auth_tokens=(text,))


_NOT_JSON = object()


def _json_or_none(text: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _keys_from_object(fields: object) -> SigningKeys:
    if not isinstance(fields, dict):
        raise TokenNotConfigured("the secret starts like a JSON object but is not one")
    tokens = tuple(token for token in (_key(fields.get("auth_token")), _key(fields.get("previous_auth_token")))
                   if token)
    shared = {key_id: key for key_id, key in _pairs(fields.get("shared_keys")) if key_id and key}
    accounts = {sid: key for sid, key in _pairs(fields.get("accounts")) if ACCOUNT_SID.fullmatch(sid) and key}
    if not tokens and not shared and not accounts:
        raise TokenNotConfigured("the secret's JSON object holds no usable key")
    return SigningKeys(auth_tokens=tokens, shared_keys=shared, accounts=accounts)


def _pairs(mapping: object) -> list[tuple[str, str | None]]:
    if not isinstance(mapping, dict):
        return []
    return [(str(name).strip(), _key(value)) for name, value in mapping.items()]


def _key(value: object) -> str | None:
    """A usable key: a non-empty string of visible ASCII once surrounding whitespace is dropped."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if _KEY.fullmatch(value) else None
