"""Kinesis consumer: Twilio Event Streams records → status table, notifications, dead letters."""

from aws_lambda_powertools.utilities.batch import process_partial_response

from twilio_sink.observability import logger, metrics, trace_handler
from twilio_sink.stream import WholeBatchProcessor, consume


# Never log the event: it holds phone numbers and message text.
@logger.inject_lambda_context(log_event=False)
@trace_handler
@metrics.log_metrics
def lambda_handler(event, context):
    # One processor per invocation: it holds the batch's records and failures, and an invocation
    # must never report another's (the reliability harness runs invocations inside one another).
    return process_partial_response(event=event, record_handler=consume, processor=WholeBatchProcessor(),
                                    context=context)
