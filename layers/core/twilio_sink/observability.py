"""The one place that owns logger, metrics and tracing (service name and namespace come from env)."""

import json
import logging
from collections import Counter
from collections.abc import Collection

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider
from botocore.exceptions import ClientError

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

__all__ = ["logger", "metrics", "tracer", "trace_handler", "MetricUnit", "single_metric", "is_metrics_disabled",
           "emit_batch_metrics", "emit_without_service", "log_aws_failure", "count"]


def trace_handler(handler):
    """Powertools' capture_lambda_handler where tracing is on; the handler itself elsewhere."""
    return tracer.capture_lambda_handler(handler) if tracer else handler


def log_aws_failure(step: str, error: BaseException, items: int) -> None:
    code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None
    logger.warning("AWS call failed; items will be retried",
                   extra={"step": step, "error": type(error).__name__, "code": code, "items": items})


def emit_batch_metrics(received: list, counts: Counter, dead_letters: int, failed: int,
                       known_types: Collection[str]) -> None:
    """One batch's metrics: what arrived, what it changed, what was published, dead-lettered, retried.

    `known_types`: the registry's; only those become `EventsByType` dimensions.
    """
    for name, value in (
        ("EventsReceived", len(received)),
        ("EventsApplied", counts["applied"]),
        ("EventsStale", counts["stale"]),
        ("EventsDuplicate", counts["duplicate"]),
        ("NotificationsPublished", counts["published"]),
        ("DeadLetters", dead_letters),
        ("RetriableFailures", failed),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    # single_metric prints even when metrics are disabled (local runs): honour the switch here.
    if is_metrics_disabled():
        return
    # Only known types become dimensions: an arbitrary `type` must not mint new metrics.
    by_type = Counter(item.event.type for item in received
                      if item.event is not None and item.poison is None and item.event.type in known_types)
    for event_type, count in by_type.items():
        with single_metric(name="EventsByType", unit=MetricUnit.Count, value=count,
                           default_dimensions=metrics.default_dimensions) as metric:
            metric.add_dimension(name="event_type", value=event_type)


def count(name: str, **dimensions: str) -> None:
    """One count of `name` under its own dimensions (Metrics' dimensions are shared by all its metrics)."""
    # single_metric prints even when metrics are disabled (local runs): honour the switch here.
    if is_metrics_disabled():
        return
    with single_metric(name=name, unit=MetricUnit.Count, value=1,
                       default_dimensions=metrics.default_dimensions) as metric:
        for dimension, value in dimensions.items():
            metric.add_dimension(name=dimension, value=value)


def emit_without_service(name: str, unit: MetricUnit, values: list[float], dimensions: dict[str, str],
          account: str | None = None) -> None:
    # Powertools' EMF provider with no service: single_metric would add the `service` dimension.
    record = AmazonCloudWatchEMFProvider(service="")
    # Dimensions first: the provider prints a record by itself at EMF's 100 values, with them.
    for dimension, word in dimensions.items():
        record.add_dimension(name=dimension, value=word)
    if account:
        record.add_dimensions(**dimensions, account=account)
    for value in values:
        record.add_metric(name=name, unit=unit, value=value)
    if record.metric_set:
        print(json.dumps(record.serialize_metric_set(), separators=(",", ":")))
