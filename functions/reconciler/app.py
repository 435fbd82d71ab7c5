"""Scheduled reconciler: entities whose events stopped coming, checked against Twilio's REST API."""

from twilio_sink.observability import logger, metrics, trace_handler
from twilio_sink.reconcile.run import run_scheduled


@logger.inject_lambda_context(log_event=False)
@trace_handler
@metrics.log_metrics
def lambda_handler(event, context):
    counts = run_scheduled(context.get_remaining_time_in_millis())
    logger.info("reconciliation run", extra=counts)
    return counts
