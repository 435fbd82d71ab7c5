"""Webhook sink: signed Twilio Event Streams deliveries → status table, notifications, dead letters.

Behind an HTTP API (payload 2.0, the template's) or a REST API (payload 1.0): one resolver each.
"""

import os

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths

from twilio_sink import webhook
from twilio_sink.observability import logger, metrics, tracer

# Behind a custom domain's base path mapping the event's path may keep the base path: route past it.
_prefixes = webhook.route_prefixes(os.environ.get("PUBLIC_BASE_URL", ""))
http_api = APIGatewayHttpResolver(strip_prefixes=_prefixes)
rest_api = APIGatewayRestResolver(strip_prefixes=_prefixes)
http_api.exception_handler(Exception)(webhook.unexpected)
rest_api.exception_handler(Exception)(webhook.unexpected)
# Without these the catch-all above would answer an unknown path 503, and Twilio would retry a
# mistyped sink URL for four hours instead of failing at once.
http_api.not_found(webhook.not_found)
rest_api.not_found(webhook.not_found)


@http_api.post(webhook.ROUTE)
def receive_from_http_api() -> Response:
    return webhook.receive(http_api.current_event, http_api.lambda_context.get_remaining_time_in_millis())


@rest_api.post(webhook.ROUTE)
def receive_from_rest_api() -> Response:
    return webhook.receive(rest_api.current_event, rest_api.lambda_context.get_remaining_time_in_millis())


@http_api.route(webhook.ROUTE, method=webhook.OTHER_METHODS)
@rest_api.route(webhook.ROUTE, method=webhook.OTHER_METHODS)
def other_method() -> Response:
    return webhook.method_not_allowed()


# log_event stays off whatever the environment says: bodies hold phone numbers and message text.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event, context):
    event = webhook.with_text_headers(event)
    resolver = http_api if isinstance(event, dict) and event.get("version") == "2.0" else rest_api
    return resolver.resolve(event, context)
