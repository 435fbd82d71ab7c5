"""Throughput benchmark of the real handlers against a latency-charging AWS stand-in (`twilio-sink bench`).

    twilio-sink bench                         # everything, default latencies (DynamoDB 8 ms, SNS 15 ms)
    twilio-sink bench --sizes 1000 --skip-webhook --skip-imports
    twilio-sink bench --profile 1000          # where the consumer's CPU goes (cProfile, all threads)
    twilio-sink bench --imports-only          # only the cold start: imports, init + first invocation

Each measurement runs in a fresh interpreter (bench/worker.py). Nothing here asserts a target: it prints.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

from sink_bench import results
from sink_bench.fake_aws import DEFAULT_LATENCY
from sink_dev.paths import ROOT

FUNCTIONS = ("stream_consumer", "webhook")
TARGETS = {"events_per_s": 1000, "vs_naive": 25, "requests_per_event": 1.0, "webhook_p99_s": 1.0,
           "import_ratio": 1.5, "floor_ratio": 1.2, "peak_mb_10000": 256, "wru_per_event": 2.0,
           "dollars_per_million": 2.0}

# On-demand prices assumed for the cost estimate (us-east-1, USD, list prices of 2025; free tiers ignored).
PRICES = {
    "dynamodb_wru": 0.625e-6,  # per write request unit
    "dynamodb_rru": 0.125e-6,  # per read request unit
    "dynamodb_gb_month": 0.25,  # storage, per GB-month (history kept: reported apart)
    "sns_request": 0.50e-6,  # per publish request (each 64 KB chunk of a PublishBatch is one request)
    "lambda_request": 0.20e-6,
    "lambda_gb_second": 0.0000133334,  # arm64
    "kinesis_gb_in": 0.08,  # on-demand, each record rounded up to 1 KB
    "kinesis_gb_out": 0.04,  # on-demand, one standard consumer (the function)
    "api_request": 1.00e-6,  # HTTP API, per request of up to 512 KB
    "logs_gb": 0.50,  # CloudWatch Logs ingestion
    "xray_trace": 5.00e-6,  # per trace recorded: the default rule records 1 a second, then 5 %
}
MEMORY_GB = {"kinesis": 1769 / 1024, "webhook": 512 / 1024}  # the template's defaults
LAMBDA_LOG_BYTES = 350  # START, END and REPORT lines Lambda writes per invocation
HISTORY_ITEM_OVERHEAD = 100  # bytes DynamoDB adds per item for storage

# Import timing: a fresh `python -S` whose path is only the `sam build` output (function, layer) and the
# runtime's own packages, which cannot write bytecode (Lambda's /var/task and /opt are read-only): what a
# cold start imports, from what is shipped. The baseline runs the same way, in the same rounds.
IMPORT_BASELINE = "import boto3\nfrom aws_lambda_powertools import Logger"
# Each event-facing function's floor: what its stack makes every invocation import, whatever this code does
# (issue 21: the import target is judged against it, as the baseline above could not be met with them).
# pydantic's floor is its first model: defining any model, even of one field, loads pydantic's schema
# machinery (about 10 ms on the bench machine, a further model well under 1 ms), so whoever validates
# with pydantic pays it once, in whichever module defines the first model.
PYDANTIC_FLOOR = "\nfrom pydantic import BaseModel\nclass First(BaseModel):\n    one: int"
IMPORT_FLOORS = {
    "stream_consumer": IMPORT_BASELINE + PYDANTIC_FLOOR + "\nimport aws_lambda_powertools.utilities.batch",
    "webhook": IMPORT_BASELINE + PYDANTIC_FLOOR + "\nimport aws_lambda_powertools.event_handler"
               "\nimport aws_lambda_powertools.utilities.parameters\nfrom twilio.request_validator import RequestValidator",
}
IMPORT_FUNCTION = "import app"
# CPU time, not wall time: importing is CPU work, and CPU time does not count the waits for the CPU that other
# processes cause on a shared machine (Lambda gives the function its own share).
TIMED = "import time\nstarted = time.process_time()\n{code}\nprint(time.process_time() - started)"
BUILT = {"stream_consumer": "StreamConsumerFunction", "webhook": "WebhookFunction"}
# What a cold start really costs is the import plus the first invocation (validators built on first use,
# boto3 clients, the first requests): the same fresh interpreter imports the function, then handles one
# typical event, a batch of the seed mix, whose AWS requests the bench's fake answers. The fake is loaded
# after the import, from its file (its few imports are ones the function has loaded already), attaches to
# each client as the function makes it (none may exist before: nothing reaches real AWS), and its own CPU
# is not counted.
FIRST_INVOCATION_RECORDS = 100  # Kinesis records
FIRST_DELIVERY_EVENTS = 25  # in the webhook's one delivery (each seed type once)
FIRST_INVOCATION = """
import contextlib, importlib.util, io, json, sys, time
started = time.process_time()
import app
init = time.process_time() - started
import boto3.session
from twilio_sink import aws
assert aws.client.cache_info().currsize == 0, "a client made at import would escape the fake"
spec = importlib.util.spec_from_file_location("fake_aws", sys.argv[1])
fake_aws = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fake_aws)
fake = fake_aws.FakeAws({service: 0.0 for service in fake_aws.DEFAULT_LATENCY})
setup = json.loads(sys.argv[2])
fake.dynamodb.create_table(setup["table"])
fake.sns.create_topic(setup["topic"])
fake.sqs.create_queue(setup["queue"])
fake.create_secret(setup["secret"], setup["token"])
make_client = boto3.session.Session.client
def attached_client(self, *args, **kwargs):
    made = make_client(self, *args, **kwargs)
    fake.attach(made)
    return made
boto3.session.Session.client = attached_client
class Context:
    function_name = "bench"; memory_limit_in_mb = 512; aws_request_id = "bench-first"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    def get_remaining_time_in_millis(self): return 30000
with open(sys.argv[3]) as handle:
    event = json.load(handle)
with contextlib.redirect_stdout(io.StringIO()):  # the metrics the function prints
    started = time.process_time()
    answer = app.lambda_handler(event, Context())
    first = time.process_time() - started - fake.cpu_seconds
ok = answer.get("batchItemFailures") == [] if "Records" in event else answer.get("statusCode") == 200
assert ok and len(fake.sns.published) == len(event.get("Records") or json.loads(event["body"])), answer
print(init, first)
"""
# Where a function's import time goes: each step imported after the previous ones, in one interpreter.
IMPORT_STEPS = [
    ("boto3 + Powertools Logger (the baseline)", "import boto3\nfrom aws_lambda_powertools import Logger"),
    ("Powertools batch utility", "import aws_lambda_powertools.utilities.batch"),
    ("Powertools event handler", "import aws_lambda_powertools.event_handler"),
    ("pydantic (its BaseModel machinery; `import pydantic` alone loads nothing)", "from pydantic import BaseModel"),
    ("pydantic's first model (its schema machinery, paid once by whoever defines one)",
     "class First(BaseModel):\n    one: int"),
    ("twilio_sink: the core (registry, families, pipeline, store, notify)", "import twilio_sink.pipeline"),
    ("twilio_sink.stream + twilio_sink.webhook (twilio RequestValidator)", "import twilio_sink.stream, twilio_sink.webhook"),
    ("Powertools Tracer() (the X-Ray SDK: only where tracing is on)", "from aws_lambda_powertools import Tracer\nTracer()"),
]
STEPS_SCRIPT = """
import time
for code in {codes!r}:
    started = time.process_time()
    exec(code)
    print(time.process_time() - started)
"""


# The run's progress bar (stderr; on a terminal only, so a redirected report holds the figures alone).
STEPS = tqdm(total=0, unit="step", file=sys.stderr, disable=None, leave=False, bar_format="{n}/{total} {bar} {desc}")


def progress(text: str) -> None:
    """One step of the run begins: the bar names it and counts the one before as done."""
    if STEPS.disable:
        print(f"  .. {text}", file=sys.stderr, flush=True)
        return
    if STEPS.desc:
        STEPS.update()
    STEPS.set_description_str(text)


def worker(spec: dict) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as result:
        subprocess.run([sys.executable, "-m", "sink_bench.worker", json.dumps(spec), result.name], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        return json.loads(Path(result.name).read_text())


def template_settings() -> dict[str, str]:
    """The template's fixed settings of every function (Globals variables that are plain strings)."""
    from sink_dev.template import load_template

    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    return {name: value for name, value in variables.items() if isinstance(value, str)}


def lambda_python(path: str, script: str, *args: str) -> list[float]:
    """Run `script` in a fresh interpreter laid out like Lambda's; the numbers it prints."""
    from sink_bench.worker import ENVIRONMENT

    env = ENVIRONMENT | template_settings() | {"PATH": os.environ["PATH"], "PYTHONPATH": path,
                                                "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-S", "-c", script, *args], cwd=tempfile.gettempdir(), env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"a timed interpreter failed:\n{done.stderr}")
    # JSON lines are the function's own logs (Powertools' Logger writes to the stdout it found at import,
    # which redirect_stdout does not replace), such as a sample brand failure's "compliance setback".
    return [float(value) for line in done.stdout.splitlines() if not line.startswith("{") for value in line.split()]


def per_event(result: dict) -> dict:
    n = result["records"]
    return {"events_per_s": n / result["wall"], "cpu_ms": 1000 * result["cpu"] / n,
            "requests": {api: count / n for api, count in sorted(result["requests"].items())},
            "requests_total": sum(result["requests"].values()) / n}


def consumer_table(sizes: list[int], latency: dict, naive_limit: int, repeats: int) -> list[str]:
    lines = ["| records | handler | events/s | vs naive | AWS requests/event (by API) | CPU ms/event | peak RSS MB | check |",
             "|---:|---|---:|---:|---|---:|---:|---|"]
    for size in sizes:
        progress(f"consumer, {size} records, {repeats} times")
        fast = worker({"kind": "consumer", "records": size, "repeats": repeats, "latency": latency})
        naive_records = min(size, naive_limit)
        progress(f"naive consumer, {naive_records} records")
        naive = worker({"kind": "naive", "records": naive_records, "latency": latency})
        results.consumer(size, fast, naive)
        fast_rates, naive_rates = per_event(fast), per_event(naive)
        ratio = fast_rates["events_per_s"] / naive_rates["events_per_s"]
        for name, result, rates, vs in (("pipeline", fast, fast_rates, f"{ratio:.1f}x"),
                                        (f"naive ({naive_records} records)" if naive_records < size else "naive",
                                         naive, naive_rates, "1x")):
            apis = ", ".join(f"{api.split('.', 1)[1]} {value:.3f}" for api, value in rates["requests"].items())
            lines.append(f"| {size:,} | {name} | {rates['events_per_s']:,.0f} | {vs} | **{rates['requests_total']:.2f}**: {apis} "
                         f"| {rates['cpu_ms']:.2f} | {result['peak_mb']:.0f} | {result['check']} |")
    return lines


def cost_lines(entities: int, rate: float, latency: dict) -> list[str]:
    """WRU per event by API and item kind, and $ per million events by service, for both doors."""
    workload = (f"Cost: {entities:,} entities' lifecycles ({rate:.0f} new a second; messages: queued and sent together, the "
                "outcome seconds later, read a minute later for 30 %; 10 % A2P registrations, two events minutes apart), "
                "every event through one door: Kinesis in 1 s batching windows (at most 1,000 records), the webhook in "
                "64 kB bodies. Capacity units by DynamoDB's rules (tools/sink_bench/fake_aws.py `Capacity`); `outbox`: "
                "what a state write costs more for its claims.")
    lines = [workload, "| door | events | invocations | WRU/event (by API, item kind) | RRU/event | requests/event "
             "| $ per million events | check |", "|---|---:|---:|---|---:|---:|---|---|"]
    for door in ("kinesis", "webhook"):
        progress(f"cost through the {door}, {entities:,} entities")
        result = worker({"kind": "cost", "door": door, "entities": entities, "rate": rate, "latency": latency})
        n = result["events"]
        writes = {f"{api} {kind}": units / n for api, kind, unit, units in result["capacity"] if unit == "WRU"}
        reads = sum(units for _, _, unit, units in result["capacity"] if unit == "RRU") / n
        dollars = dollars_per_million(door, result)
        history_gb = (result["history_bytes"] / n + HISTORY_ITEM_OVERHEAD) * 1e6 / 2**30
        results.cost(door, workload, result, dollars, history_gb)
        lines.append(
            f"| {door} | {n:,} | {result['invocations']:,} | **{sum(writes.values()):.2f}**: "
            + ", ".join(f"{name} {value:.2f}" for name, value in writes.items())
            + f" | {reads:.2f} | {sum(result['requests'].values()) / n:.2f} | **{sum(dollars.values()):.2f}**: "
            + ", ".join(f"{service} {value:.3f}" for service, value in dollars.items()) + f" | {result['check']} |")
    storage = history_gb * PRICES["dynamodb_gb_month"]
    memory = ", ".join(f"{door} {gb * 1024:.0f} MB" for door, gb in MEMORY_GB.items())
    assumptions = (f"History kept: {history_gb:.2f} GB per million events, ${storage:.2f} a month while kept "
                   f"(the default HistoryRetentionDays, 90 days: about ${3 * storage:.2f} per million events; 0 keeps "
                   "them forever). Prices assumed (on-demand, us-east-1, free tiers ignored): "
                   + ", ".join(f"{name} {value:g}" for name, value in PRICES.items())
                   + f"; Lambda memory {memory}; X-Ray: every invocation traced (the default rule's 1 a second covers "
                   "a steady stream); SNS deliveries to subscribers and the stream's hourly charge ($0.04/h) not included.")
    results.cost_assumptions(assumptions)
    return lines + [assumptions]


def dollars_per_million(door: str, result: dict) -> dict[str, float]:
    """$ per million events, by service, from one cost run's counts and the PRICES above."""
    per_million = 1e6 / result["events"]
    capacity = {unit: sum(units for _, _, u, units in result["capacity"] if u == unit) for unit in ("WRU", "RRU")}
    requests = result["requests"]
    invocations = result["invocations"]
    dollars = {
        "DynamoDB": capacity["WRU"] * PRICES["dynamodb_wru"] + capacity["RRU"] * PRICES["dynamodb_rru"],
        "SNS": sum(count for api, count in requests.items() if api.startswith("SNS.")) * PRICES["sns_request"],
        "Lambda": invocations * PRICES["lambda_request"] + result["wall"] * MEMORY_GB[door] * PRICES["lambda_gb_second"],
    }
    if door == "kinesis":
        gigabytes = result["record_kb"] / 2**20
        dollars["Kinesis"] = gigabytes * (PRICES["kinesis_gb_in"] + PRICES["kinesis_gb_out"])
    else:
        dollars["API Gateway"] = invocations * PRICES["api_request"]
    dollars["CloudWatch Logs"] = (result["log_bytes"] + invocations * LAMBDA_LOG_BYTES) / 2**30 * PRICES["logs_gb"]
    dollars["X-Ray"] = invocations * PRICES["xray_trace"]
    return {service: value * per_million for service, value in dollars.items()}


def webhook_lines(size: int, runs: int, latency: dict) -> list[str]:
    progress(f"webhook, {runs} deliveries of {size // 1000} kB")
    result = worker({"kind": "webhook", "bytes": size, "runs": runs, "latency": latency})
    results.webhook(size, result)
    return [f"Webhook, {size // 1000} kB body ({result['events']} events), {result['runs']} deliveries: "
            f"p50 {1000 * result['p50']:.0f} ms, p99 {1000 * result['p99']:.0f} ms, max {1000 * result['max']:.0f} ms "
            f"(check: {result['check']})"]


def first_invocation_events(folder: Path) -> tuple[dict[str, Path], str]:
    """The event each function's first invocation gets, as files (the seed mix, fresh ids), and in words."""
    from sink_bench import workload
    from sink_dev.samples import kinesis_event, webhook_body, webhook_event

    # The seed mix but its test event, whose sample names no account (a dead letter is not typical).
    mix = [event for event in workload.mixed_events(2 * FIRST_INVOCATION_RECORDS, run="first")
           if event["type"] != "com.twilio.eventstreams.test-event"]
    events = {"stream_consumer": kinesis_event(mix[:FIRST_INVOCATION_RECORDS]),
              "webhook": webhook_event(webhook_body(mix[:FIRST_DELIVERY_EVENTS]))}
    folder.mkdir(parents=True, exist_ok=True)
    for name, event in events.items():
        (folder / f"{name}.json").write_text(json.dumps(event))
    words = (f"{FIRST_INVOCATION_RECORDS} Kinesis records of the seed mix (its test event left out), a webhook "
             f"delivery of {FIRST_DELIVERY_EVENTS} of them")
    return {name: folder / f"{name}.json" for name in events}, words


def first_invocation(path: str, event: Path) -> list[float]:
    """[import, first invocation] seconds of CPU, in one fresh interpreter laid out like Lambda's."""
    from sink_bench.worker import ENVIRONMENT
    from sink_dev.samples import LOCAL_TEST_AUTH_TOKEN

    setup = {"table": ENVIRONMENT["STATUS_TABLE_NAME"], "topic": ENVIRONMENT["TOPIC_ARN"],
             "queue": ENVIRONMENT["DEAD_LETTER_QUEUE_URL"], "secret": ENVIRONMENT["AUTH_TOKEN_SECRET_ARN"],
             "token": LOCAL_TEST_AUTH_TOKEN}
    fake = ROOT / "tools" / "sink_bench" / "fake_aws.py"
    return lambda_python(path, FIRST_INVOCATION, str(fake), json.dumps(setup), str(event))


def import_lines(runs: int) -> list[str]:
    from sink_dev import build as host_build

    progress("sam build for this machine's architecture (cached in .aws-sam/host)")
    built = host_build.build(ROOT / ".aws-sam" / "host")
    runtime = host_build.runtime_packages(ROOT / ".aws-sam" / "host" / "runtime")
    paths = {name: host_build.lambda_path(built, logical_id, runtime) for name, logical_id in BUILT.items()}
    events, first_words = first_invocation_events(ROOT / ".aws-sam" / "host" / "first-invocation")
    progress(f"import times, {runs} rounds of fresh interpreters")
    codes = {"baseline": IMPORT_BASELINE} | {name: IMPORT_FUNCTION for name in FUNCTIONS} | {
        f"floor:{name}": IMPORT_FLOORS[name] for name in FUNCTIONS}
    samples: dict[str, list[float]] = {name: [] for name in codes}
    firsts: dict[str, list[list[float]]] = {name: [] for name in FUNCTIONS}
    for _ in range(runs):  # interleaved, so that a busy machine slows all of them alike
        for name, code in codes.items():
            # Each floor in its own function's build: the same interpreter conditions as the function.
            path = paths.get(name.removeprefix("floor:"), paths["stream_consumer"])
            samples[name] += lambda_python(path, TIMED.format(code=code))
        for name in FUNCTIONS:
            firsts[name].append(first_invocation(paths[name], events[name]))
    baseline = statistics.median(samples["baseline"])
    lines = [f"Cold start as shipped (sam build output, no bytecode writes; median of {runs} fresh interpreters): "
             f"boto3 + Powertools Logger {1000 * baseline:.0f} ms"]
    measured, first, floors = {}, {}, {}
    for name in FUNCTIONS:
        seconds = measured[name] = statistics.median(samples[name])
        floor = floors[name] = statistics.median(samples[f"floor:{name}"])
        first[name] = {"init": statistics.median(run[0] for run in firsts[name]),
                       "invocation": statistics.median(run[1] for run in firsts[name]),
                       "total": statistics.median(sum(run) for run in firsts[name])}
        lines.append(f"  {BUILT[name]} (functions/{name}/app.py): {1000 * seconds:.0f} ms = {seconds / baseline:.2f}x, "
                     f"{seconds / floor:.2f}x its stack's floor ({1000 * floor:.0f} ms); "
                     f"init + first invocation {1000 * first[name]['total']:.0f} ms (import {1000 * first[name]['init']:.0f}"
                     f" + invocation {1000 * first[name]['invocation']:.0f})")
    lines.append(f"  first invocation: {first_words}")
    results.imports(runs, baseline, measured, first, first_words, floors)
    lines.append("  where it goes (each step after the previous ones, median):")
    steps = [lambda_python(paths["webhook"], STEPS_SCRIPT.format(codes=[code for _, code in IMPORT_STEPS]))
             for _ in range(runs)]
    for (label, _), column in zip(IMPORT_STEPS, zip(*steps)):
        lines.append(f"    {1000 * statistics.median(column):5.0f} ms  {label}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="twilio-sink bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000], help="Kinesis batch sizes")
    parser.add_argument("--ddb-latency", type=float, default=DEFAULT_LATENCY["dynamodb"], help="seconds per DynamoDB request")
    parser.add_argument("--sns-latency", type=float, default=DEFAULT_LATENCY["sns"], help="seconds per SNS request")
    parser.add_argument("--naive-limit", type=int, default=1000,
                        help="the naive handler runs at most this many records (it needs ~25 ms each)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per consumer measurement (median reported)")
    parser.add_argument("--webhook-bytes", type=int, default=64_000)
    parser.add_argument("--webhook-runs", type=int, default=100)
    parser.add_argument("--import-runs", type=int, default=7)
    parser.add_argument("--cost-entities", type=int, default=5000, help="entities of the cost workload")
    parser.add_argument("--cost-rate", type=float, default=200, help="new entities a second in the cost workload")
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--skip-webhook", action="store_true")
    parser.add_argument("--skip-imports", action="store_true")
    parser.add_argument("--no-results", action="store_true",
                        help=f"do not write {results.RESULTS.relative_to(ROOT)} and the docs block (a quick try)")
    parser.add_argument("--profile", type=int, metavar="RECORDS",
                        help="only profile the consumer on one batch of RECORDS and print the top functions")
    parser.add_argument("--imports-only", action="store_true",
                        help="only the cold start (imports, init + first invocation); prints, writes no results "
                             "(the file holds every figure of one run)")
    args = parser.parse_args(argv)
    latency = DEFAULT_LATENCY | {"dynamodb": args.ddb_latency, "sns": args.sns_latency}

    print(f"Benchmark on {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; latency per request: "
          + ", ".join(f"{service} {1000 * seconds:.0f} ms" for service, seconds in latency.items()), flush=True)
    if args.profile:
        progress(f"profiling the consumer on {args.profile} records")
        print(worker({"kind": "profile", "records": args.profile, "latency": latency})["text"])
        return 0
    if args.imports_only:
        STEPS.total = 2
        lines = import_lines(args.import_runs)
        STEPS.close()
        print("\n".join(lines))
        return 0
    print(f"Consumer rows: the median of {args.repeats} runs (peak RSS: the highest); naive: one run.", flush=True)
    STEPS.total = 2 * len(args.sizes) + 2 * (not args.skip_cost) + (not args.skip_webhook) + (not args.skip_imports)
    results.start(TARGETS, latency, args.repeats)
    lines = consumer_table(args.sizes, latency, args.naive_limit, args.repeats)
    if not args.skip_cost:
        lines += [""] + cost_lines(args.cost_entities, args.cost_rate, latency)
    if not args.skip_webhook:
        lines += [""] + webhook_lines(args.webhook_bytes, args.webhook_runs, latency)
    if not args.skip_imports:
        lines += [""] + import_lines(args.import_runs)
    STEPS.close()
    print("\n".join(lines))
    if not args.no_results:
        from sink_bench import workload

        results.record_size(workload.kinesis_batch(1000), 1000)
        results.write()
        print(f"\nResults written to {results.RESULTS.relative_to(ROOT)} and {results.DOC.relative_to(ROOT)}")
    print(f"\nTargets: 1,000-record batch >= {TARGETS['events_per_s']:,} events/s and >= {TARGETS['vs_naive']}x naive; "
          f"<= {TARGETS['requests_per_event']} AWS requests/event; webhook p99 <= {TARGETS['webhook_p99_s']} s; "
          f"imports <= {TARGETS['floor_ratio']}x the stack's floor; 10,000-record batch peak <= {TARGETS['peak_mb_10000']} MB; "
          f"<= {TARGETS['wru_per_event']} WRU/event and <= ${TARGETS['dollars_per_million']:.2f} per million events through each door")
    return 0


if __name__ == "__main__":
    sys.exit(main())
