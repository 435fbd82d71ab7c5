"""The webhook's answers (contract 5), given an HTTP API (2.0) or REST API (1.0) event.

Twilio waits 5 s and drops what is answered with a 4xx other than 429, so: every rejection is a 403
that is counted, alarmed and logged (reason and caller, never the body or a key); everything that
may be transient answers 503 so Twilio retries. Lambda freezes the environment once the handler
returns, so nothing of a delivery runs after its answer: past the deadline no state write and no
publish starts (503, Twilio retries), and a publish that started is finished and recorded first.
"""

import base64
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from . import aws
from .accounts import AccountRule
from .config import settings
from .observability import MetricUnit, logger, metrics
from .pipeline import default_pipeline
from .poison import Poison, PoisonReason
from .received import Received, from_webhook
from .signature import ProxyEvent, Rejected, TokenNotConfigured, delivery, signing_keys, source_ip, verify

ROUTE = "/events"
# Every method but POST on the route: 405, final for Twilio like any 4xx but 429.
OTHER_METHODS = ["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"]
# Leave Lambda this much of its own timeout to send the answer.
LAMBDA_TIMEOUT_MARGIN_SECONDS = 0.5


def receive(event: ProxyEvent, remaining_millis: int | None = None) -> Response:
    """The delivery's answer, given once nothing of its work is left running: Lambda freezes what is."""
    started = time.monotonic()
    budget = settings().webhook_deadline_seconds
    remaining_seconds = None if remaining_millis is None else remaining_millis / 1000
    if remaining_seconds is not None:
        budget = min(budget, remaining_seconds - LAMBDA_TIMEOUT_MARGIN_SECONDS)
    return handle(event, remaining_seconds, Budget(started, budget))


@dataclass(frozen=True)
class Budget:
    """How long the delivery may take from when it arrived (`started`, a time.monotonic() value)."""

    started: float
    seconds: float

    def deadline(self, clock: Callable[[], float]) -> float:
        """The end of the budget on `clock` (the pipeline's, which its claims' leases keep too)."""
        return clock() + self.seconds - (time.monotonic() - self.started)


def handle(event: ProxyEvent, remaining_seconds: float | None = None, budget: Budget | None = None) -> Response:
    """The delivery's answer. Past its budget no state write or publish starts: 503, and Twilio retries."""
    config = settings()
    try:
        request = delivery(event, config.public_base_url)
    except Rejected as rejection:
        return reject(event, rejection.reason, checked_url=None)
    try:
        verified = verify(request, partial(signing_keys, config.auth_token_secret_arn))
    except Rejected as rejection:
        return reject(event, rejection.reason, request.checked_url)
    except (GetParameterError, TokenNotConfigured, *aws.AWS_ERRORS) as error:
        # No token to check against (unreadable, or not a usable shape): Twilio must retry, not drop.
        # The detail is AWS's words or ours, never any part of the secret.
        metrics.add_metric(name="AuthTokenUnavailable", unit=MetricUnit.Count, value=1)
        logger.error("auth token unavailable", extra={"error": type(error).__name__, "detail": str(error)})
        return answer(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "temporarily unavailable, retry"})
    metrics.add_metric(name="DeliveriesVerified", unit=MetricUnit.Count, value=1)
    accounts = AccountRule.webhook(config.twilio_account_sids, verified.account)

    # Each request carries its events once (`Change.carrier`): a Twilio retry is another request.
    origin: dict[str, Any] = {"request_id": _request_id(event) or str(uuid.uuid4())}
    if verified.account is not None:
        # Kept in a dead letter: a replay attributes the events naming no account as this delivery did.
        origin["signed_by"] = verified.account
    # Built only for a verified delivery: an unsigned request to a cold container costs no AWS clients.
    pipeline = default_pipeline()
    deadline = budget.deadline(pipeline.clock) if budget else None
    outcome = pipeline.process(_received(verified.body, origin, accounts), remaining_seconds, deadline)
    summary = outcome.summary()
    if outcome.late:
        # Claims it wrote and did not publish are released: the retry need not wait for their lease.
        metrics.add_metric(name="DeadlineExceeded", unit=MetricUnit.Count, value=1)
        logger.warning("deadline reached; answering 503 so that Twilio retries",
                       extra={"deadline_seconds": config.webhook_deadline_seconds})
        return answer(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "timed out, retry"})
    if outcome.failed:
        return answer(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "temporary failure, retry", **summary})
    if outcome.dead_letters:
        problems = [
            {"index": letter.origin.get("index"), "reason": letter.reason, "detail": letter.detail}
            for letter in outcome.dead_letters.values()
        ]
        return answer(HTTPStatus.BAD_REQUEST, {"error": "unusable events kept as dead letters",
                                               "problems": problems, **summary})
    return answer(HTTPStatus.OK, summary)


def reject(event: ProxyEvent, reason: str, checked_url: str | None) -> Response:
    # Twilio drops events answered 403 for good: make every rejection loud. The URL (without its
    # query) tells a wrong host, stage or base path apart; the body and the keys are never logged.
    metrics.add_metric(name="SignatureRejected", unit=MetricUnit.Count, value=1)
    if reason == "invalid_signature":
        # Signed, with the hash of this very body, yet no key verifies it: what Twilio's own deliveries
        # look like when the token or the URL is wrong. Internet noise rarely gets this far.
        metrics.add_metric(name="SignatureMismatch", unit=MetricUnit.Count, value=1)
    logger.warning("signature rejected",
                   extra={"reason": reason, "source_ip": source_ip(event), "checked_url": checked_url})
    return answer(HTTPStatus.FORBIDDEN, {"error": "invalid signature"})


def _received(body: bytes, origin: dict[str, Any], accounts: AccountRule) -> list[Received]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        # Signed by Twilio yet not text: one dead letter holding the body as base64 (contract 4).
        poison = Poison(PoisonReason.UNDECODABLE, f"body is not UTF-8 text: {error.reason} at byte {error.start}")
        return [Received("webhook", base64.b64encode(body).decode("ascii"), origin, poison=poison)]
    return from_webhook(text, origin, accounts)


def _request_id(event: ProxyEvent) -> str | None:
    context = event.get("requestContext")
    request_id = context.get("requestId") if isinstance(context, dict) else None
    return request_id if isinstance(request_id, str) else None


def answer(status: HTTPStatus, body: dict) -> Response:
    return Response(status_code=status.value, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))


def unexpected(error: Exception) -> Response:
    """Last resort for a bug: 503 so that Twilio retries (nothing lost), and no traceback to the caller.

    Only the error's type and where it was raised are logged: its message may quote the input.
    """
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    where = f"{frame.tb_frame.f_code.co_filename}:{frame.tb_lineno}" if frame else None
    metrics.add_metric(name="UnexpectedErrors", unit=MetricUnit.Count, value=1)
    logger.error("unexpected error; answering 503 so that Twilio retries",
                 extra={"error": type(error).__name__, "raised_at": where})
    return answer(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "temporary failure, retry"})


def not_found(_: Exception) -> Response:
    """An unknown path: 404 (final), counted. The path is not logged: it is the caller's text."""
    metrics.add_metric(name="RequestsUnroutable", unit=MetricUnit.Count, value=1)
    return answer(HTTPStatus.NOT_FOUND, {"error": f"not found: Twilio's sink URL ends in {ROUTE}"})


def method_not_allowed() -> Response:
    metrics.add_metric(name="RequestsUnroutable", unit=MetricUnit.Count, value=1)
    response = answer(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "only POST"})
    response.headers["Allow"] = "POST"
    return response


def route_prefixes(public_base_url: str) -> list[str] | None:
    """The base path of the public URL, for the resolver to route past (None when there is none)."""
    base_path = urlsplit(public_base_url.strip()).path.rstrip("/")
    return [base_path] if base_path else None


def with_text_headers(event: Any) -> Any:
    """The event with only text headers, as API Gateway sends them.

    Anything else cannot come from API Gateway; dropped here, it cannot trip the resolver either,
    and a request left without its signature is rejected like any other.
    """
    if not isinstance(event, dict):
        return event
    headers = event.get("headers")
    multi = event.get("multiValueHeaders")
    return event | {
        "headers": {k: v for k, v in headers.items() if isinstance(k, str) and isinstance(v, str)}
        if isinstance(headers, dict) else {},
        "multiValueHeaders": {k: v for k, v in multi.items() if isinstance(k, str) and isinstance(v, list)
                              and all(isinstance(item, str) for item in v)}
        if isinstance(multi, dict) else {},
    }
