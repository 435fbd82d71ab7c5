"""The one place that owns logger, metrics and tracer (service name and namespace come from env)."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

logger = Logger()
metrics = Metrics()
tracer = Tracer()

__all__ = ["logger", "metrics", "tracer", "MetricUnit", "single_metric", "is_metrics_disabled"]
