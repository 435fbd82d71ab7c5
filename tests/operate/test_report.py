"""`twilio-sink report` prints the figures the pipeline emitted: a known mix goes through the real
handlers, their EMF output is put into moto's CloudWatch (as CloudWatch Logs would), and the command
reads it back with ListMetrics and GetMetricData.

moto's GetMetricData computes no percentiles (it answers None, which its own serializer then refuses),
so these tests ask for the statistics moto has; the percentiles are real CloudWatch's to compute.
"""

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from sink_local import emf
from sink_ops import report
from tests.support import outcome_mix
from tests.support.expectations import emitted, metric_totals
from tests.support.outcome_mix import A, B
from tests.support.sinks import without_deadline


@pytest.fixture
def reported(stack, consumer, webhook, context, capsys, monkeypatch):
    """The known mix's EMF in moto's CloudWatch; returns the EMF records."""
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    without_deadline(monkeypatch)
    monkeypatch.setattr(report, "LATENCY_STATS", ("SampleCount", "Average", "Maximum"))
    capsys.readouterr()
    outcome_mix.deliver(consumer, webhook, context)
    records = emitted(capsys)
    assert emf.put(boto3.client("cloudwatch"), records) > 0
    return records


def run(capsys, *argv: str) -> tuple[int, str]:
    code = report.main(list(argv))
    return code, capsys.readouterr().out


def test_report_json_gives_the_mix_exactly(reported, capsys):
    code, out = run(capsys, "--since", "1h", "--json")
    assert code == 0
    figures = json.loads(out)
    assert figures["outcomes"] == {
        "brands": {"failed": 1}, "campaigns": {"failed": 1},
        "comms-messages": {"delivered": 3, "failed": 2, "read": 1, "undelivered": 1},
        "message-status": {"failed": 1},
    }
    assert (figures["messages_finished"], figures["undelivered_or_failed"]) == (7, 4)
    assert figures["undelivered_or_failed_percent"] == round(100 * 4 / 7, 2)
    assert figures["error_codes"] == {"30007": 1, "30034": 1, "none": 1, "other": 1}
    assert figures["latency_ms"] == {
        "comms-messages": {"samplecount": 3, "average": round((2000 + 3000 + 9000) / 3, 1), "maximum": 9000.0},
        "message-status": {"samplecount": 1, "average": 1000.0, "maximum": 1000.0},
    }
    assert figures["compliance_setbacks"] == {"brands": 1, "campaigns": 1, "toll-free": 1}
    # the same numbers the pipeline emitted
    emitted_outcomes = {key: n for key, n in metric_totals(reported, "Outcomes").items()
                        if "account" not in dict(key)}
    assert emitted_outcomes == {(("family", family), ("status", status)): n
                                for family, statuses in figures["outcomes"].items() for status, n in statuses.items()}


def test_report_per_account(reported, capsys):
    code, out = run(capsys, "--since", "30m", "--account", B, "--json")
    assert code == 0
    figures = json.loads(out)
    assert figures["account"] == B
    assert figures["outcomes"] == {"comms-messages": {"failed": 1}, "message-status": {"failed": 1}}
    assert figures["error_codes"] == {"30034": 1, "other": 1}
    assert figures["undelivered_or_failed_percent"] == 100.0
    code, out = run(capsys, "--account", A, "--json")
    assert json.loads(out)["error_codes"] == {"30007": 1, "none": 1}


def test_report_table_on_a_terminal(reported, capsys):
    code, out = run(capsys)
    assert code == 0
    assert out.startswith("Delivery health, all accounts,")
    lines = out.splitlines()
    assert any(line.split() == ["comms-messages", "delivered", "3"] for line in lines)
    assert "Messages finished: 7; undelivered or failed: 4 (57.14 %)" in out
    assert any(line.split() == ["30034", "1"] for line in lines)
    assert any(line.split()[:3] == ["comms-messages", "3", "4666.7"] for line in lines)
    assert any(line.split() == ["toll-free", "1"] for line in lines)


def test_a_window_before_the_events_reports_nothing(reported, capsys):
    since = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    # The window is the whole period since then, which includes now: so ask for one that ends before.
    start = datetime.now(UTC) - timedelta(days=3)
    figures = report.gather(boto3.client("cloudwatch"), "TwilioEventSink", start, start + timedelta(hours=1), None)
    assert figures["outcomes"] == {} and figures["error_codes"] == {} and figures["latency_ms"] == {}
    assert figures["undelivered_or_failed_percent"] is None
    assert run(capsys, "--since", since)[0] == 0


@pytest.mark.parametrize("since", ["yesterday", "5w", "2999-01-01T00:00:00"])
def test_a_wrong_since_is_a_usage_error(since, capsys):
    assert report.main(["--since", since]) == 2
    assert "--since" in capsys.readouterr().err


def test_an_aws_failure_exits_1(stack, capsys, monkeypatch):
    from botocore.exceptions import ClientError

    def refuse(*args, **kwargs):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "ListMetrics")

    monkeypatch.setattr(report.Metrics, "listed", refuse)
    assert report.main([]) == 1
    assert "could not read CloudWatch" in capsys.readouterr().err


def test_the_stacks_namespace_is_read_from_its_parameters(stack, capsys):
    # Given a deployed stack whose MetricsNamespace is not the default
    template = {"Parameters": {"MetricsNamespace": {"Type": "String"}},
                "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    boto3.client("cloudformation").create_stack(
        StackName="sink", TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": "MetricsNamespace", "ParameterValue": "Elsewhere"}])

    # When the report names the stack, Then it reads that namespace
    code, out = run(capsys, "--stack", "sink", "--json")
    assert code == 0 and json.loads(out)["namespace"] == "Elsewhere"
    # and a stack that is not there is an error, not a report of nothing
    assert report.main(["--stack", "missing"]) == 1
    assert "cannot read stack 'missing'" in capsys.readouterr().err
