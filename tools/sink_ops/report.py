"""Delivery health for a window, from CloudWatch: outcomes, undelivered+failed share, error codes, latency.

    twilio-sink report [--since 1h] [--account AC…] [--json] [--namespace NS | --stack NAME]

`--since`: 30m, 6h, 7d… or an ISO-8601 time. Without `--account` every account counts; with it, only
that account's outcomes and error codes (latency and compliance setbacks are not kept per account).
The figures are the delivery-health metrics (docs/operations.md, "Delivery health"), read with
ListMetrics and GetMetricData; AWS credentials and region come from the usual places.
"""

import argparse
import json
import re
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from sink_ops import locate
from twilio_sink.registry import FAMILIES

DEFAULT_NAMESPACE = "TwilioEventSink"  # template.yaml MetricsNamespace's default
QUERIES_PER_REQUEST = 500  # GetMetricData's limit
# Twilio's statuses that end a message's delivery, and those among them that failed it.
FINISHED = ("delivered", "undelivered", "failed")
FAILING = ("undelivered", "failed")
MESSAGE_FAMILIES = frozenset(family.name for family in FAMILIES if family.entity == "message")
LATENCY_STATS = ("SampleCount", "Average", "p50", "p90", "p99", "Maximum")
SINCE = re.compile(r"(\d+)([mhd])")
UNITS = {"m": "minutes", "h": "hours", "d": "days"}


class UsageError(ValueError):
    pass


def window_start(since: str, now: datetime) -> datetime:
    match = SINCE.fullmatch(since.strip())
    if match:
        return now - timedelta(**{UNITS[match[2]]: int(match[1])})
    try:
        moment = datetime.fromisoformat(since)
    except ValueError:
        raise UsageError(f"--since {since!r}: expected 30m, 6h, 7d or an ISO-8601 time") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment >= now:
        raise UsageError("--since must be in the past")
    return moment


def period_of(start: datetime, end: datetime) -> int:
    """One period spanning the window (so a percentile is the window's): whole minutes, whole hours
    past 15 days (CloudWatch's rule for older data)."""
    seconds = max(60, int((end - start).total_seconds()) + 1)  # + 1: the end is past `end`, never at it
    step = 3600 if seconds > 15 * 86400 else 60
    return -(-seconds // step) * step


class Metrics:
    """The namespace's metrics in one window, each read as one figure."""

    def __init__(self, cloudwatch, namespace: str, start: datetime, end: datetime):
        self.cloudwatch = cloudwatch
        self.namespace = namespace
        self.start = start.replace(second=0, microsecond=0)
        self.period = period_of(self.start, end)

    def listed(self, name: str) -> list[dict[str, str]]:
        """The dimension sets metric `name` has (ListMetrics), each as {name: value}."""
        found = []
        for page in self.cloudwatch.get_paginator("list_metrics").paginate(Namespace=self.namespace, MetricName=name):
            found.extend({d["Name"]: d["Value"] for d in metric.get("Dimensions", [])} for metric in page["Metrics"])
        return found

    def read(self, name: str, dimension_sets: list[dict[str, str]], stats: tuple[str, ...]) -> list[dict[str, Any]]:
        """For each dimension set, {stat: value or None}: one period over the window."""
        queries = [{"Id": f"q{index}_{position}", "ReturnData": True,
                    "MetricStat": {"Metric": {"Namespace": self.namespace, "MetricName": name,
                                              "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]},
                                   "Period": self.period, "Stat": stat}}
                   for index, dims in enumerate(dimension_sets) for position, stat in enumerate(stats)]
        values: dict[str, float] = {}
        for start in range(0, len(queries), QUERIES_PER_REQUEST):
            kwargs = {"MetricDataQueries": queries[start:start + QUERIES_PER_REQUEST], "StartTime": self.start,
                      "EndTime": self.start + timedelta(seconds=self.period)}
            for page in self.cloudwatch.get_paginator("get_metric_data").paginate(**kwargs):
                for result in page["MetricDataResults"]:
                    if result["Values"]:
                        values[result["Id"]] = result["Values"][0]
        return [{stat: values.get(f"q{index}_{position}") for position, stat in enumerate(stats)}
                for index in range(len(dimension_sets))]

    def sums(self, name: str, account: str | None) -> list[tuple[dict[str, str], float]]:
        """(dimensions without the account, sum) of every listed set of metric `name` that is the
        account's (or, without one, that names no account: the totals) and has data in the window."""
        sets = [dims for dims in self.listed(name) if dims.get("account") == account]
        read = self.read(name, sets, ("Sum",))
        return [({k: v for k, v in dims.items() if k != "account"}, figures["Sum"])
                for dims, figures in zip(sets, read) if figures["Sum"] is not None]


def gather(cloudwatch, namespace: str, start: datetime, end: datetime, account: str | None,
           latency_stats: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The report's figures. `latency_stats`: the statistics of the latency (default LATENCY_STATS)."""
    metrics = Metrics(cloudwatch, namespace, start, end)
    outcomes: dict[str, dict[str, int]] = defaultdict(dict)
    for dims, total in metrics.sums("Outcomes", account):
        outcomes[dims["family"]][dims["status"]] = int(total)
    finished = sum(n for family, statuses in outcomes.items() if family in MESSAGE_FAMILIES
                   for status, n in statuses.items() if status in FINISHED)
    failing = sum(n for family, statuses in outcomes.items() if family in MESSAGE_FAMILIES
                  for status, n in statuses.items() if status in FAILING)
    codes = {dims["error_code"]: int(total) for dims, total in metrics.sums("DeliveryErrors", account)}
    latency_sets = metrics.listed("DeliveryLatency")
    latency = {dims["family"]: figures
               for dims, figures in zip(latency_sets, metrics.read("DeliveryLatency", latency_sets,
                                                                     latency_stats or LATENCY_STATS))
               if figures.get("SampleCount")}
    setbacks = {dims["family"]: int(total) for dims, total in metrics.sums("ComplianceSetbacks", None)}
    return {
        "namespace": namespace,
        "since": metrics.start.isoformat(),
        "until": (metrics.start + timedelta(seconds=metrics.period)).isoformat(),
        "account": account,
        "outcomes": {family: dict(sorted(statuses.items())) for family, statuses in sorted(outcomes.items())},
        "messages_finished": finished,
        "undelivered_or_failed": failing,
        "undelivered_or_failed_percent": round(100 * failing / finished, 2) if finished else None,
        "error_codes": dict(sorted(codes.items(), key=lambda item: (-item[1], item[0]))),
        "latency_ms": {family: {stat.lower(): (round(value, 1) if value is not None else None)
                                for stat, value in figures.items()}
                       for family, figures in sorted(latency.items())},
        "compliance_setbacks": dict(sorted(setbacks.items())),
    }


def render(report: dict[str, Any]) -> str:
    """The report as plain text for a terminal."""
    who = f"account {report['account']}" if report["account"] else "all accounts"
    lines = [f"Delivery health, {who}, {report['since']} to {report['until']} ({report['namespace']})", ""]
    lines.append("Outcomes (final statuses applied):")
    rows = [(family, status, n) for family, statuses in report["outcomes"].items() for status, n in statuses.items()]
    lines += [f"  {family:<20} {status:<26} {n:>10}" for family, status, n in rows] or ["  none"]
    share = report["undelivered_or_failed_percent"]
    lines += ["", f"Messages finished: {report['messages_finished']}; undelivered or failed: "
              f"{report['undelivered_or_failed']}" + (f" ({share} %)" if share is not None else "")]
    lines += ["", "Error codes of undelivered and failed messages:"]
    lines += [f"  {code:<10} {n:>10}" for code, n in report["error_codes"].items()] or ["  none"]
    scope = "" if not report["account"] else " (all accounts: latency is not kept per account)"
    lines += ["", f"Delivery latency, sent to delivered/undelivered/failed, ms{scope}:"]
    if report["latency_ms"]:
        lines.append(f"  {'family':<20} {'count':>8} {'average':>10} {'p50':>10} {'p90':>10} {'p99':>10} {'max':>10}")
        for family, f in report["latency_ms"].items():
            cells = [f.get(stat) for stat in ("average", "p50", "p90", "p99", "maximum")]
            lines.append(f"  {family:<20} {int(f['samplecount']):>8} "
                         + " ".join(f"{'—' if cell is None else cell:>10}" for cell in cells))
    else:
        lines.append("  none")
    lines += ["", "Compliance setbacks (brand, campaign, toll-free failed/rejected/suspended; all accounts):"]
    lines += [f"  {family:<20} {n:>10}" for family, n in report["compliance_setbacks"].items()] or ["  none"]
    return "\n".join(lines)


def namespace_of(args) -> str:
    if not args.stack:
        return args.namespace
    try:
        described = boto3.client("cloudformation", region_name=args.region).describe_stacks(StackName=args.stack)
    except (BotoCoreError, ClientError) as error:
        raise locate.StackNotFound(f"cannot read stack {args.stack!r}: {error}") from None
    parameters = {p["ParameterKey"]: p.get("ParameterValue") for p in described["Stacks"][0].get("Parameters", [])}
    return parameters.get("MetricsNamespace") or DEFAULT_NAMESPACE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twilio-sink report", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--since", default="1h", help="the window's start: 30m, 6h, 7d… or an ISO-8601 time (default 1h)")
    parser.add_argument("--account", metavar="AC…", help="only this account's outcomes and error codes")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--namespace", default=DEFAULT_NAMESPACE, help=f"the metrics namespace (default {DEFAULT_NAMESPACE})")
    where.add_argument("--stack", help="a deployed stack's name (reads its MetricsNamespace parameter)")
    parser.add_argument("--region", help="AWS region (default: your AWS configuration)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    end = datetime.now(UTC)
    try:
        start = window_start(args.since, end)
        report = gather(boto3.client("cloudwatch", region_name=args.region), namespace_of(args), start, end,
                        args.account)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except LookupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as error:
        print(f"error: could not read CloudWatch: {error}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
