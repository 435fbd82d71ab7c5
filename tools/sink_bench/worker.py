"""One measurement in a fresh interpreter (so peak memory and imports of one cannot leak into another).

    python -m sink_bench.worker '<json spec>' <result file>

Specs: {"kind": "consumer" | "naive", "records": N, "repeats": R, "latency": {...}} (the median run of R), {"kind": "webhook", "bytes": B,
"runs": R, "latency": {...}}, {"kind": "profile", "records": N, "latency": {...}, "top": K}.
Prints nothing on stdout worth reading (Powertools metrics go there); writes the result as JSON.
"""

import base64
import json
import os
import statistics
import sys
import time

ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "POWERTOOLS_SERVICE_NAME": "bench", "POWERTOOLS_METRICS_NAMESPACE": "TwilioEventSink",
    "POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_TRACE_DISABLED": "1",
    "STATUS_TABLE_NAME": "status-table",
    "TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:notifications",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dead-letters",
    "AUTH_TOKEN_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:twilio-auth-token-AbCdEf",
    "PUBLIC_BASE_URL": "",
    "TWILIO_ACCOUNT_SIDS": "AC7052102cd33665b8046063f51b60605c",  # the samples' account (SAMPLE_ACCOUNT_SID)
}
os.environ.update(ENVIRONMENT)
os.environ.pop("AWS_ENDPOINT_URL", None)

from sink_bench import workload  # noqa: E402
from sink_bench.fake_aws import FakeAws, item_kind, item_size  # noqa: E402
from sink_dev.samples import LOCAL_TEST_AUTH_TOKEN  # noqa: E402
from sink_local.stack import LambdaContext, load_function  # noqa: E402


def fake_stack(latency: dict) -> FakeAws:
    fake = FakeAws(latency)
    fake.dynamodb.create_table(ENVIRONMENT["STATUS_TABLE_NAME"])
    fake.sns.create_topic(ENVIRONMENT["TOPIC_ARN"])
    fake.sqs.create_queue(ENVIRONMENT["DEAD_LETTER_QUEUE_URL"])
    fake.create_secret(ENVIRONMENT["AUTH_TOKEN_SECRET_ARN"], LOCAL_TEST_AUTH_TOKEN)
    return fake


def attach_core(fake: FakeAws) -> None:
    from twilio_sink import aws

    for service in ("dynamodb", "sns", "sqs", "secretsmanager"):
        fake.attach(aws.client(service))


def reset_peak_memory() -> None:
    # Linux: writing 5 to clear_refs resets the peak resident set size (VmHWM) to the current one.
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def memory_mb(field: str) -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(call, fake: FakeAws) -> dict:
    """Wall time, CPU time (minus the fake's own), AWS requests and peak memory of one call."""
    fake.requests.clear()
    fake_cpu = fake.cpu_seconds
    reset_peak_memory()
    rss_before = memory_mb("VmRSS")
    wall, cpu = time.perf_counter(), time.process_time()
    answer = call()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"answer": answer, "wall": wall, "cpu": cpu - (fake.cpu_seconds - fake_cpu),
            "fake_cpu": fake.cpu_seconds - fake_cpu, "requests": dict(fake.requests),
            "peak_mb": memory_mb("VmHWM"), "rss_before_mb": rss_before}


def consumer_run(spec: dict) -> dict:
    fake = fake_stack(spec["latency"])
    records = spec["records"]
    if spec["kind"] == "naive":
        from sink_bench.naive import NaiveConsumer

        handler = NaiveConsumer(ENVIRONMENT["STATUS_TABLE_NAME"], ENVIRONMENT["TOPIC_ARN"])
        fake.attach(handler.dynamodb)
        fake.attach(handler.sns)
    else:
        handler = load_function("stream_consumer")
        attach_core(fake)
    context = LambdaContext()
    handler.lambda_handler(workload.kinesis_batch(26, run="w"), context)  # warm: clients, caches
    runs = []
    for repeat in range(spec.get("repeats", 1)):  # new entities each time: every event stays an applied change
        fake.forget_data()
        event = workload.kinesis_batch(records, run=f"m{repeat}")
        published_before = len(fake.sns.published)
        result = measure(lambda batch=event: handler.lambda_handler(batch, context), fake)
        failures = result.pop("answer")["batchItemFailures"]
        published = len(fake.sns.published) - published_before
        # Every event of the workload is an applied change: each must be published, once.
        result["check"] = "ok" if not failures and published == records else (
            f"{len(failures)} records failed, {published} of {records} notifications published")
        runs.append(result)
        del event
    result = sorted(runs, key=lambda run: run["wall"])[len(runs) // 2]  # the median run (the machine is shared)
    result["peak_mb"] = max(run["peak_mb"] for run in runs)
    result["check"] = next((run["check"] for run in runs if run["check"] != "ok"), "ok")
    result["records"] = records
    result["repeats"] = len(runs)
    result["runs_wall"], result["runs_cpu"] = [run["wall"] for run in runs], [run["cpu"] for run in runs]
    return result


def webhook_run(spec: dict) -> dict:
    fake = fake_stack(spec["latency"])
    webhook = load_function("webhook")
    attach_core(fake)
    context = LambdaContext()
    warm, _ = workload.webhook_delivery(2_000, run="w")
    webhook.lambda_handler(warm, context)  # warm: clients, cached auth token
    times, statuses, events = [], set(), 0
    for run in range(spec["runs"]):
        delivery, events = workload.webhook_delivery(spec["bytes"], run=f"r{run}x")
        started = time.perf_counter()
        statuses.add(webhook.lambda_handler(delivery, context)["statusCode"])
        times.append(time.perf_counter() - started)
    times.sort()
    return {"p50": statistics.median(times), "p99": times[min(len(times) - 1, round(0.99 * (len(times) - 1)))],
            "max": times[-1], "events": events, "runs": len(times),
            "check": "ok" if statuses == {200} else f"answers {sorted(statuses)}"}


def cost_run(spec: dict) -> dict:
    """The lifecycle workload through one door: capacity units, requests, time, log bytes per event."""
    import io
    import uuid
    from contextlib import redirect_stdout

    from sink_dev.samples import kinesis_event, webhook_event

    fake = fake_stack(spec["latency"])
    door = spec["door"]
    handler = load_function("stream_consumer" if door == "kinesis" else "webhook")
    attach_core(fake)
    context = LambdaContext()
    handler.lambda_handler(workload.kinesis_batch(26, run="w") if door == "kinesis"
                           else workload.webhook_delivery(2_000, run="w")[0], context)  # warm: clients, caches
    fake.forget_data()
    fake.dynamodb.capacity.units.clear()
    events = workload.lifecycles(spec["entities"], spec["rate"])
    if door == "kinesis":
        invocations = [kinesis_event(batch, 1 + 10_000 * n) for n, batch in enumerate(workload.stream_batches(events))]
    else:
        invocations = []
        for body in workload.webhook_bodies(events):
            event = webhook_event(body)
            event["requestContext"]["requestId"] = str(uuid.uuid4())  # API Gateway: one id per request
            invocations.append(event)
    logs = io.StringIO()
    with redirect_stdout(logs):  # what the functions print (EMF metrics) is what CloudWatch Logs ingests
        result = measure(lambda: [handler.lambda_handler(invocation, context) for invocation in invocations], fake)
    answers = result.pop("answer")
    failures = sum(len(a["batchItemFailures"]) for a in answers) if door == "kinesis" else sum(
        a["statusCode"] != 200 for a in answers)
    published = len(fake.sns.published)
    table = fake.dynamodb.tables[ENVIRONMENT["STATUS_TABLE_NAME"]].items
    history = [table[key] for key in list(table.keys())]
    return result | {
        "history_bytes": sum(item_size(item) for item in history if item_kind(item) == "history"),
        # Kinesis on-demand bills each record rounded up to 1 KB
        "record_kb": sum(-(-len(base64.b64decode(r["kinesis"]["data"])) // 1024) for i in invocations
                         for r in i.get("Records", [])),
        "door": door, "events": len(events), "entities": spec["entities"], "invocations": len(invocations),
        "log_bytes": len(logs.getvalue().encode()),
        "capacity": [[api, kind, unit, units] for (api, kind, unit), units in sorted(fake.dynamodb.capacity.units.items())],
        # In order per entity, every event is an applied change: each must be published, once.
        "check": "ok" if not failures and published == len(events) else f"{failures} failures, {published} of {len(events)} published",
    }


def profile_run(spec: dict) -> dict:
    import cProfile
    import io
    import pstats

    fake = fake_stack(spec["latency"])
    handler = load_function("stream_consumer")
    attach_core(fake)
    context = LambdaContext()
    handler.lambda_handler(workload.kinesis_batch(26, run="w"), context)
    event = workload.kinesis_batch(spec["records"], run="m")
    profiler = cProfile.Profile()
    profiler.enable()
    handler.lambda_handler(event, context)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats(spec.get("sort", "tottime")).print_stats(spec.get("top", 30))
    return {"text": out.getvalue()}


def main() -> None:
    spec, result_file = json.loads(sys.argv[1]), sys.argv[2]
    run = {"consumer": consumer_run, "naive": consumer_run, "webhook": webhook_run, "profile": profile_run,
           "cost": cost_run}[spec["kind"]]
    result = run(spec)
    with open(result_file, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
