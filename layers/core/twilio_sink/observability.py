"""The one place that owns logger, metrics and tracer (service name and namespace come from env)."""

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
tracer = Tracer()

__all__ = ["logger", "metrics", "tracer", "MetricUnit", "single_metric", "is_metrics_disabled"]
