"""CloudWatch's side of the Embedded Metric Format, for a stack without CloudWatch Logs (the local one, tests).

In AWS, CloudWatch Logs turns each EMF line a function prints into metrics. Here the lines are read
back from the functions' output and put with `PutMetricData`, one datum per metric and dimension set,
as CloudWatch would store them, so that `twilio-sink report` reads them the way it reads a deployed
stack's.
"""

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

PUT_LIMIT = 1000  # metric data per PutMetricData request


def records(lines: Iterable[str]) -> list[dict]:
    """The EMF records among printed lines (anything else, such as log lines, is skipped)."""
    found = []
    for line in lines:
        if line.startswith('{"_aws"'):
            found.append(json.loads(line))
    return found


def records_in(paths: Iterable[Path]) -> list[dict]:
    found = []
    for path in paths:
        with open(path, encoding="utf-8") as log:
            found.extend(records(log))
    return found


def metric_data(record: dict) -> list[tuple[str, dict]]:
    """(namespace, PutMetricData datum) for each metric of the record and each of its dimension sets."""
    metadata = record["_aws"]
    timestamp = datetime.fromtimestamp(metadata["Timestamp"] / 1000, UTC)
    data = []
    for directive in metadata["CloudWatchMetrics"]:
        for metric in directive["Metrics"]:
            value = record[metric["Name"]]
            values = value if isinstance(value, list) else [value]
            for dimensions in directive["Dimensions"]:
                data.append((directive["Namespace"], {
                    "MetricName": metric["Name"],
                    "Dimensions": [{"Name": name, "Value": str(record[name])} for name in dimensions],
                    "Values": [float(v) for v in values],
                    "Counts": [1.0] * len(values),
                    "Unit": metric.get("Unit", "None"),
                    "Timestamp": timestamp,
                }))
    return data


def put(cloudwatch, emf_records: Iterable[dict]) -> int:
    """Put the records' metrics; returns how many data were put."""
    by_namespace: dict[str, list[dict]] = {}
    for record in emf_records:
        for namespace, datum in metric_data(record):
            by_namespace.setdefault(namespace, []).append(datum)
    for namespace, data in by_namespace.items():
        for start in range(0, len(data), PUT_LIMIT):
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start:start + PUT_LIMIT])
    return sum(len(data) for data in by_namespace.values())
