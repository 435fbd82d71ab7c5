"""The dashboard shows what the code really emits: its custom metrics are checked against the EMF
output of real invocations of the functions (every metric path forced), not against a copied list.
"""

import json
import re
import threading
import time
from dataclasses import replace

import pytest

from sink_dev import dashboard
from sink_dev.paths import ROOT
from sink_dev.samples import LOCAL_TEST_AUTH_TOKEN, webhook_event
from sink_dev.template import load_template
from tests.support.sinks import kinesis_batch, post
from tests.template.test_template import env_of

NAMESPACE = "<MetricsNamespace>"


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template(ROOT / "template.yaml")


def dashboard_metrics(template: dict) -> list[tuple[str, str, dict]]:
    """(namespace, metric name, {dimension: value}) of every metric and SEARCH in the dashboard body."""
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    # Substitutions become <Name> placeholders; the numeric ones (thresholds) numbers.
    for number in dashboard.NUMBERS:
        body = body.replace(number, "1")
    widgets = json.loads(re.sub(r"\$\{([^}]+)\}", r"<\1>", body))
    found = []
    for widget in widgets["widgets"]:
        for entry in widget["properties"]["metrics"]:
            if isinstance(entry[0], dict):  # SEARCH('{namespace,dim,dim} MetricName="X"', …)
                match = re.search(r"SEARCH\('\{([^}]+)\} MetricName=\"(\w+)\"", entry[0]["expression"])
                if match is None:  # math on the SEARCHes of other entries
                    continue
                namespace, *dimensions = match.group(1).split(",")
                found.append((namespace, match.group(2), dict.fromkeys(dimensions)))
                continue
            namespace, name, *rest = entry
            pairs = [r for r in rest if not isinstance(r, dict)]
            found.append((namespace, name, dict(zip(pairs[::2], pairs[1::2]))))
    return found


def emitted(output: str) -> set[tuple[str, frozenset]]:
    """(metric name, dimension names) of every EMF record printed."""
    found = set()
    for line in output.splitlines():
        if '"_aws"' not in line:
            continue
        for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]:
            for dimensions in directive["Dimensions"]:
                found |= {(metric["Name"], frozenset(dimensions)) for metric in directive["Metrics"]}
    return found


def test_custom_metrics_are_exactly_what_the_functions_emit(template, stack, consumer, webhook, context, capsys,
                                                            monkeypatch):
    from sink_local.stack import load_function
    from twilio_sink import aws, config
    from twilio_sink import webhook as core

    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    secrets = aws.client("secretsmanager")
    secrets.put_secret_value(SecretId=stack.secret_arn, SecretString="{}")  # a fresh deploy's placeholder
    post(webhook, context, [])  # AuthTokenUnavailable
    aws.reset_clients()
    secrets = aws.client("secretsmanager")
    secrets.put_secret_value(SecretId=stack.secret_arn, SecretString=LOCAL_TEST_AUTH_TOKEN)
    post(webhook, context, [], token="wrong-token")  # SignatureRejected
    samples = json.loads((ROOT / "events" / "samples" / "cloudevents.json").read_text())
    foreign = samples[1] | {"id": "EZforeign", "source": "/2010-04-01/Accounts/AC" + "0" * 32 + "/Brands"}
    foreign["data"] = foreign["data"] | {"accountsid": "AC" + "0" * 32}
    # An event naming no account, admitted under the stack's only account: EventsWithoutAccount.
    anonymous = samples[1] | {"id": "EZanonymous", "source": "/v1/Brands"}
    anonymous["data"] = {k: v for k, v in samples[1]["data"].items() if k != "accountsid"}
    # The pipeline's counts and EventsByType, ForeignAccountEvents on both sinks, DeliveriesVerified.
    consumer.lambda_handler(kinesis_batch(samples + [foreign, anonymous]), context)
    post(webhook, context, samples[:3] + [foreign])
    unroutable = webhook_event("[]")
    unroutable["rawPath"] = unroutable["requestContext"]["http"]["path"] = "/EVENTS"
    webhook.lambda_handler(unroutable, context)  # RequestsUnroutable
    released = threading.Event()
    monkeypatch.setattr(core, "handle", lambda *args: released.wait(10))
    webhook.lambda_handler(webhook_event("[]"), replace(context, deadline=time.monotonic() + 0.6))  # DeadlineExceeded
    released.set()
    monkeypatch.setattr(core, "receive", lambda *args: 1 / 0)
    webhook.lambda_handler(webhook_event("[]"), context)  # UnexpectedErrors
    status = next(s for s in samples if s["type"].startswith("com.twilio.messaging.message."))
    newer = status | {"dataschema": "https://events-schemas.twilio.com/Messaging.MessageStatus/99"}
    consumer.lambda_handler(kinesis_batch([newer]), context)  # SchemaVersionsUnknown
    # The reconciler's counts, emitted by every run (its API keys secret still the placeholder).
    monkeypatch.setenv("TWILIO_API_KEYS_SECRET_ARN", stack.physical["TwilioApiKeysSecret"]["Ref"])
    config.settings.cache_clear()
    load_function("reconciler").lambda_handler({"source": "aws.events"}, context)
    code_emits = emitted(capsys.readouterr().out)

    on_dashboard = {(name, frozenset(dims)) for namespace, name, dims in dashboard_metrics(template)
                    if namespace == NAMESPACE}
    assert code_emits, "no EMF output captured"
    assert on_dashboard == code_emits


def test_custom_metric_services_are_the_functions_service_names(template):
    services = {env_of(template, f)["POWERTOOLS_SERVICE_NAME"]
                for f in ("StreamConsumerFunction", "WebhookFunction", "ReconcilerFunction")}
    used = {dims["service"] for namespace, _, dims in dashboard_metrics(template)
            if namespace == NAMESPACE and dims.get("service")}
    assert used == services
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert "${MetricsNamespace}" in body and "TwilioEventSink" not in body  # the parameter, not a copy


def test_aws_metrics_cover_iterator_age_errors_durations_and_queues(template):
    metrics = {(namespace, name, tuple(sorted(dims.items()))) for namespace, name, dims in dashboard_metrics(template)}
    consumer, hook = ("FunctionName", "<StreamConsumerFunction>"), ("FunctionName", "<WebhookFunction>")
    expected = {("AWS/Lambda", "IteratorAge", (consumer,))}
    expected |= {("AWS/Lambda", metric, (function,)) for metric in ("Errors", "Throttles", "Duration")
                 for function in (consumer, hook)}
    expected |= {("AWS/SQS", "ApproximateNumberOfMessagesVisible", (("QueueName", f"<{queue}.QueueName>"),))
                 for queue in ("DeadLetterQueue", "StreamFailureQueue")}
    assert expected <= metrics
    referenced = set(re.findall(r"\$\{(\w+)", template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]))
    assert referenced - {"AWS"} <= set(template["Resources"]) | set(template["Parameters"])


def test_the_template_carries_dashboard_json_as_it_is(template):
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert body == dashboard.compact_body(), "edit dashboard.json, then run twilio-sink dashboard"
    assert dashboard.main(["--check"]) == 0
