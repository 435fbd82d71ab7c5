"""The delivery-health alarms fire on a mix above their thresholds and stay quiet below.

Each mix goes through the real stream consumer; the EMF it prints is summed as CloudWatch would hold
it for one period, and the template's own alarm definition (its queries, expression, threshold and
the parameters' defaults) decides (tests/support/alarms.py).
"""

import pytest

from sink_dev.paths import ROOT
from sink_dev.template import load_template
from tests.support import factories
from tests.support.alarms import evaluate, in_alarm
from tests.support.expectations import emitted, metric_totals
from tests.support.factories import A2P, cloudevent
from tests.support.sinks import consume, failed_sequences

DELIVERY_ALARMS = ("DeliveryFailureShareAlarm", "CarrierFilteringAlarm", "ComplianceSetbackAlarm")
METRICS = ("Outcomes", "DeliveryErrors", "ComplianceSetbacks")


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template(ROOT / "template.yaml")


@pytest.fixture
def defaults(template) -> dict[str, float]:
    return {name: p["Default"] for name, p in template["Parameters"].items() if p["Type"] == "Number"}


@pytest.fixture(autouse=True)
def _metrics_on(monkeypatch):
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)


def held_after(consumer, context, capsys, events: list[dict]) -> dict:
    """What CloudWatch holds once the consumer processed `events` (one period)."""
    capsys.readouterr()
    for start in range(0, len(events), 100):
        assert failed_sequences(consume(consumer, context, events[start:start + 100], first_sequence=start + 1)) == []
    records = emitted(capsys)
    return {name: metric_totals(records, name) for name in METRICS}


def finished(delivered: int, failing: int) -> list[dict]:
    """Messages of both message families: `delivered` delivered, `failing` undelivered or failed (30003)."""
    events = []
    for n in range(delivered + failing):
        status = "delivered" if n < delivered else ("undelivered", "failed")[n % 2]
        if n % 2:
            events.append(factories.message(status, f"MM{n}", 3, error_code="30003"))
        else:
            events.append(cloudevent("com.twilio.messaging.message." + status,
                                     {"messageSid": f"SM{n}", "messageStatus": status.upper(), "errorCode": 30003}, 3))
    return events


@pytest.mark.parametrize(("delivered", "failing", "fires"), [
    (89, 11, True),  # 11 % of 100
    (90, 10, False),  # 10 %: not above the default 10
    (10, 10, False),  # 50 %, but 20 messages are fewer than the default minimum of 100
    (0, 0, False),  # nothing finished
])
def test_failure_share_alarm(template, defaults, stack, consumer, context, capsys, delivered, failing, fires):
    held = held_after(consumer, context, capsys, finished(delivered, failing))
    assert in_alarm(template["Resources"]["DeliveryFailureShareAlarm"], held, defaults) is fires


@pytest.mark.parametrize(("filtered", "unregistered", "fires"), [(6, 5, True), (5, 5, False), (0, 0, False)])
def test_carrier_filtering_alarm(template, defaults, stack, consumer, context, capsys, filtered, unregistered, fires):
    codes = ["30007"] * filtered + ["30034"] * unregistered + ["30003"] * 20  # other codes do not count
    events = [factories.message("undelivered", f"MM{n}", 3, error_code=code) for n, code in enumerate(codes)]
    held = held_after(consumer, context, capsys, events)
    assert in_alarm(template["Resources"]["CarrierFilteringAlarm"], held, defaults) is fires


@pytest.mark.parametrize(("event", "fires"), [
    (lambda: factories.brand("brand-failure"), True),
    (lambda: cloudevent(A2P + "campaign-registration.campaign-failure", {"campaignsid": "CM1"}), True),
    (lambda: cloudevent(A2P + "campaign-registration.suspended-campaign-delete-submitted", {"campaignsid": "CM1"}), True),
    (lambda: cloudevent(A2P + "toll-free-verification.rejected", {"tollfreeverificationsid": "HH1"}), True),
    (lambda: factories.brand("brand-registered"), False),
    (lambda: cloudevent(A2P + "toll-free-verification.request-approved", {"tollfreeverificationsid": "HH1"}), False),
])
def test_compliance_setback_alarm(template, defaults, stack, consumer, context, capsys, caplog, event, fires):
    held = held_after(consumer, context, capsys, [event()])
    assert in_alarm(template["Resources"]["ComplianceSetbackAlarm"], held, defaults) is fires
    # The entity is named in the log line, not in the metric
    named = [r for r in caplog.records if r.getMessage() == "compliance setback"]
    assert len(named) == (1 if fires else 0)
    assert all({dimension for dimension, _ in key} == {"family"} for key in held["ComplianceSetbacks"])


@pytest.mark.parametrize("name", DELIVERY_ALARMS)
def test_delivery_alarms_watch_the_outcome_metrics_without_the_door(template, name):
    props = template["Resources"][name]["Properties"]
    for query in props["Metrics"]:
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            assert metric["Namespace"] == {"Ref": "MetricsNamespace"}
            assert metric["MetricName"] in METRICS
            assert "service" not in {d["Name"] for d in metric["Dimensions"]}
    assert "Runbook" in props["AlarmDescription"]
    assert props["TreatMissingData"] == "notBreaching"
    assert props["AlarmActions"] == {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}


def test_the_evaluator_takes_one_branch_and_refuses_what_it_does_not_model():
    assert evaluate("IF(a > 0, 100 * b / a, 0)", {"a": 0, "b": 0}) == 0
    assert evaluate("FILL(a, 0) + 1", {"a": None}) == 1
    assert evaluate("a + 1", {"a": None}) is None
    with pytest.raises(AssertionError):
        evaluate("SUM(METRICS())", {})


def test_the_share_covers_every_family_whose_messages_finish_and_so_does_the_dashboard(template):
    from twilio_sink.outcomes import LATENCY_TO
    from twilio_sink.registry import FAMILIES

    finishing = {family.name for family in FAMILIES if family.final >= LATENCY_TO}
    props = template["Resources"]["DeliveryFailureShareAlarm"]["Properties"]
    watched = {tuple(sorted((d["Name"], d["Value"]) for d in q["MetricStat"]["Metric"]["Dimensions"]))
               for q in props["Metrics"] if "MetricStat" in q}
    assert watched == {(("family", family), ("status", status)) for family in finishing for status in LATENCY_TO}
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    for family in finishing:
        assert f'family=\\"{family}\\"' in body  # in the share widget's SEARCH
        assert f'"DeliveryLatency","family","{family}"' in body
