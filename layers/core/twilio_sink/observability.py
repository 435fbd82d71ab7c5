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

__all__ = ["logger", "metrics", "tracer", "MetricUnit", "single_metric", "is_metrics_disabled", "count"]


def count(name: str, dimension: str, value: str) -> None:
    """One count of `name` under its own dimension (Metrics' dimensions are shared by all its metrics)."""
    # single_metric prints even when metrics are disabled (local runs): honour the switch here.
    if is_metrics_disabled():
        return
    with single_metric(name=name, unit=MetricUnit.Count, value=1,
                       default_dimensions=metrics.default_dimensions) as metric:
        metric.add_dimension(name=dimension, value=value)
