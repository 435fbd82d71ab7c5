"""The one place that owns logger, metrics and tracing (service name and namespace come from env)."""

import logging

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

# The AWS SDK logs request and response bodies (phone numbers, message text) at DEBUG: keep it above
# that even when an operator sets the runtime's log level to DEBUG.
for _sdk in ("botocore", "boto3", "urllib3"):
    logging.getLogger(_sdk).setLevel(logging.INFO)

logger = Logger()
metrics = Metrics()
# Building a Tracer imports the X-Ray SDK (about half of a cold start when compiled from source), even
# where it then traces nothing: build one only where Powertools' own rule says tracing is on (in Lambda,
# not disabled by POWERTOOLS_TRACE_DISABLED, not under `sam local`).
tracer = None if Tracer._is_tracer_disabled() else Tracer()


def trace_handler(handler):
    """Powertools' capture_lambda_handler where tracing is on; the handler itself elsewhere."""
    return tracer.capture_lambda_handler(handler) if tracer else handler


__all__ = ["logger", "metrics", "tracer", "trace_handler", "MetricUnit", "single_metric", "is_metrics_disabled"]
