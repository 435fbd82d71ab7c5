"""The webhook's answers (contract 5), given an HTTP API event."""

import json
from http import HTTPStatus

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from . import aws
from .config import settings
from .inbound import from_webhook
from .observability import MetricUnit, logger, metrics
from .pipeline import default_pipeline
from .signature import Rejected, TokenNotConfigured, auth_tokens, delivery, verify

ROUTE = "/events"


def receive(event: APIGatewayProxyEventV2) -> Response:
    config = settings()
    source_ip = event.request_context.http.source_ip
    try:
        request = delivery(event, config.public_base_url)
        text = verify(request, auth_tokens(config.auth_token_secret_arn))
    except Rejected as rejection:
        # Twilio drops events answered 403 for good: make every rejection loud.
        metrics.add_metric(name="SignatureRejected", unit=MetricUnit.Count, value=1)
        logger.warning("signature rejected", extra={"reason": rejection.reason, "source_ip": source_ip})
        return answer(HTTPStatus.FORBIDDEN, {"error": "invalid signature"})
    except (GetParameterError, TokenNotConfigured, *aws.AWS_ERRORS, ValueError) as error:
        # No token to check against (unreadable, unparsable, not yet set): Twilio must retry, not drop.
        metrics.add_metric(name="AuthTokenUnavailable", unit=MetricUnit.Count, value=1)
        logger.error("auth token unavailable", extra={"error": type(error).__name__, "detail": str(error)})
        return answer(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "temporarily unavailable, retry"})

    outcome = default_pipeline().process(from_webhook(text, {"request_id": event.request_context.request_id}))
    summary = outcome.summary()
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


def answer(status: HTTPStatus, body: dict) -> Response:
    return Response(status_code=status.value, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))
