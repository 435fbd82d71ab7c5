"""Webhook sink: signed Twilio Event Streams deliveries → status table, notifications, dead letters."""

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths

from twilio_sink import webhook
from twilio_sink.observability import logger, metrics, tracer

app = APIGatewayHttpResolver()


@app.post(webhook.ROUTE)
def receive_events() -> Response:
    return webhook.receive(app.current_event)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event, context):
    return app.resolve(event, context)
