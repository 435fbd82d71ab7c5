"""`twilio-sink serve`: the stack of template.yaml running on this machine, no AWS account and no Docker.

    twilio-sink serve [--port 3000] [--aws-port 5000] [--public-base-url URL]
                                      [--parameter Name=Value ...] [--state-file PATH] [--twilio-api-port N]

- An AWS stand-in (moto's server) on 127.0.0.1 with the template's resources: the status table from its
  own definition, topic, queues, the stream, and the secret holding the local test token.
- The webhook function behind an HTTP API emulation on 127.0.0.1, at the template's route.
- The stream consumer fed by an emulation of Lambda's Kinesis event source mapping.
- With `--twilio-api-port`: a stand-in of Twilio's REST API (sink_local/twilio_api.py) and the reconciler
  function, its client pointed there (TwilioApiBaseUrl) and the stand-in's API key in its secret; the
  schedule is not emulated: `twilio-sink run` invokes it once.
Each function runs in its own process with its template environment. Ctrl-C stops everything.
While it runs, `.serve/stack.json` tells the other commands (status, send_local) where it is.
"""

import argparse
import json
import logging
import os
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from moto.server import ThreadedMotoServer

from sink_dev.paths import ROOT
from sink_dev.samples import LOCAL_TEST_AUTH_TOKEN, SAMPLE_SUBACCOUNT_SID
from sink_local.api import DEFAULT_ROUTE, HttpApi
from sink_local.functions import LocalFunction
from sink_local.kinesis import BatchResult, StreamPoller
from sink_local.stack import FAKE_CREDENTIALS, REGION, Stack, Template
from sink_local.twilio_api import ACCOUNT, API_KEY_SECRET, API_KEY_SID, TwilioApi
from sink_ops.locate import LOCAL_STACK_FILE

STATE_FILE = ROOT / LOCAL_STACK_FILE
LOG_DIR = ROOT / ".serve" / "logs"
WEBHOOK, CONSUMER, RECONCILER = "WebhookFunction", "StreamConsumerFunction", "ReconcilerFunction"
SUBACCOUNT_KEY_SID = "SK" + "2" * 32


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def http_routes(template: Template) -> list[str]:
    """The route keys of the webhook's HttpApi events in the template (`POST /events`, `$default`)."""
    sources = [source["Properties"] for source in template.resources[WEBHOOK]["Properties"]["Events"].values()
               if source["Type"] == "HttpApi"]
    # An event without Method and Path is the API's $default route (SAM).
    routes = [f"{props['Method'].upper()} {props['Path']}" if "Path" in props else DEFAULT_ROUTE for props in sources]
    if not routes:
        raise ValueError(f"{WEBHOOK} has no HttpApi event in template.yaml")
    return routes


class LocalServer:
    """Starts and stops the local stack; usable as a context manager."""

    def __init__(self, port: int = 3000, aws_port: int = 5000, public_base_url: str = "",
                 parameters: dict[str, str] | None = None, state_file: Path | None = STATE_FILE,
                 log_dir: Path = LOG_DIR, say=print, auth_token: str = LOCAL_TEST_AUTH_TOKEN,
                 twilio_api_port: int | None = None):
        self.port, self.aws_port = port, aws_port
        self.auth_token = auth_token
        self.public_base_url = public_base_url.rstrip("/")
        self.parameters = dict(parameters or {})
        self.state_file, self.log_dir = state_file, log_dir
        self.say = say
        self.twilio_api_port = twilio_api_port  # None: no Twilio stand-in, no reconciler
        self.twilio_api: TwilioApi | None = None
        self.reconciler: LocalFunction | None = None
        self._stop = threading.Event()
        self._started: list = []  # what to stop, in reverse order

    # ------------------------------------------------------------------------------ start

    def start(self) -> "LocalServer":
        os.environ.update(FAKE_CREDENTIALS)  # this process only talks to the stand-in
        os.environ.pop("AWS_ENDPOINT_URL", None)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.say("→ starting the AWS stand-in (moto server)…")
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per AWS call is noise here
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.aws_port, verbose=False)
        self.moto.start()
        self._started.append(self.moto.stop)
        host, port = self.moto.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"

        self.api = HttpApi(http_routes(Template(overrides=self.parameters)),
                           invoke=lambda event: self.webhook.invoke(event), port=self.port,
                           on_request=self._log_request)
        public = self.public_base_url or f"http://127.0.0.1:{self.api.port}"
        parameters = self.parameters | {"PublicBaseUrl": public}
        if self.twilio_api_port is not None:
            self.say("→ starting the stand-in of Twilio's REST API…")
            self.twilio_api = TwilioApi(port=self.twilio_api_port, page_size=50)
            self.twilio_api.__enter__()
            self._started.append(lambda: self.twilio_api.__exit__(None, None, None))
            # The reconciler exists only with a schedule (the template's ReconcilerOn).
            parameters |= {"TwilioApiBaseUrl": self.twilio_api.base_url,
                           "ReconcileEveryMinutes": self.parameters.get("ReconcileEveryMinutes", "15")}
        self.say("→ creating the template's resources…")
        self.stack = Stack(self.auth_token, endpoint_url=self.endpoint, parameters=parameters)

        self.say("→ starting the functions (one process each)…")
        functions = [WEBHOOK, CONSUMER] + ([RECONCILER] if self.twilio_api else [])
        self.webhook, self.consumer, *reconciler = (self._function(logical_id) for logical_id in functions)
        if reconciler:
            (self.reconciler,) = reconciler
            # A key per account of the samples (an account and its subaccount), as the docs ask.
            self.twilio_api.api_key(SUBACCOUNT_KEY_SID, API_KEY_SECRET, SAMPLE_SUBACCOUNT_SID)
            self.stack.client("secretsmanager").put_secret_value(
                SecretId=self.stack.resolve({"Ref": "TwilioApiKeysSecret"}), SecretString=json.dumps({
                    ACCOUNT: {"api_key_sid": API_KEY_SID, "api_key_secret": API_KEY_SECRET},
                    SAMPLE_SUBACCOUNT_SID: {"api_key_sid": SUBACCOUNT_KEY_SID, "api_key_secret": API_KEY_SECRET}}))
        started_functions = [self.webhook, self.consumer, *reconciler]
        for function in started_functions:
            self._started.append(function.stop)
        with ThreadPoolExecutor(max_workers=3) as pool:  # each import takes a few seconds: in parallel
            for started in [pool.submit(f.start) for f in started_functions]:
                started.result()

        self.source = self.stack.event_source(CONSUMER, "Kinesis")
        self.stream_arn = self.source["Stream"]
        self.poller = StreamPoller(self.stack.kinesis, self.stream_arn, self.consumer.invoke, self.source,
                                   self.consumer.arn, sqs=self.stack.sqs, on_batch=self._log_batch)
        poller_thread = threading.Thread(target=self.poller.run, args=(self._stop,), name="kinesis", daemon=True)
        poller_thread.start()
        self._started.append(lambda: (self._stop.set(), poller_thread.join(timeout=70)))

        self.api.start()
        self._started.append(self.api.stop)
        self.public_url = f"{public}{self.api.path}"
        self._write_state()

    def _function(self, logical_id: str) -> LocalFunction:
        code_dir = Path(self.stack.template.resources[logical_id]["Properties"]["CodeUri"]).name
        environment = self.stack.function_environment(logical_id) | FAKE_CREDENTIALS | {
            "AWS_ENDPOINT_URL": self.endpoint,
            "POWERTOOLS_TRACE_DISABLED": "1",  # no X-Ray daemon here
        }
        return LocalFunction(logical_id, code_dir, environment, self.stack.function_timeout(logical_id),
                             self.log_dir / f"{logical_id}.log")

    def _write_state(self) -> None:
        if self.state_file is None:
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(self.describe(), indent=2) + "\n")
        self._started.append(lambda: self.state_file.unlink(missing_ok=True))

    def describe(self) -> dict:
        return {
            "endpoint_url": self.endpoint,
            "region": REGION,
            "webhook_url": self.api.url,
            "public_url": self.public_url,
            "auth_token": self.auth_token,
            "stream_name": self.stream_arn.rsplit("/", 1)[1],
            "stream_arn": self.stream_arn,
            "table_name": self.stack.table_name,
            "topic_arn": self.stack.topic_arn,
            "dead_letter_queue_url": self.stack.dlq_url,
            "stream_failure_queue_url": self.stack.physical["StreamFailureQueue"]["Ref"],
            "secret_arn": self.stack.secret_arn,
            "logs": {f.logical_id: str(f.log_path) for f in self._functions()},
            "twilio_api_url": self.twilio_api.base_url if self.twilio_api else None,
            # Each function's template environment on this stack (`twilio-sink invoke` runs them in SAM's container).
            "environments": {f.logical_id: self.stack.function_environment(f.logical_id)
                             for f in self._functions()},
        }

    def _functions(self) -> list[LocalFunction]:
        return [self.webhook, self.consumer] + ([self.reconciler] if self.reconciler else [])

    # ------------------------------------------------------------------------------ output

    def banner(self) -> str:
        d = self.describe()
        source = self.source
        shards = len(self.poller.shards)
        return "\n".join([
            "",
            "Local stack of template.yaml is up (Ctrl-C stops it)",
            f"  AWS stand-in (moto)  {d['endpoint_url']}  region {REGION}, any credentials",
            f"  webhook              POST {d['webhook_url']}  → {WEBHOOK}",
            f"  signed URL           {d['public_url']}?bodySHA256=<sha256 of body>  (PUBLIC_BASE_URL"
            f"{'' if self.public_base_url else '; a tunnel needs --public-base-url'})",
            f"  auth token           {d['auth_token'] if d['auth_token'] == LOCAL_TEST_AUTH_TOKEN else '(yours)'}"
            f"  (in secret {d['secret_arn'].rsplit(':', 1)[1]})",
            f"  Kinesis stream       {d['stream_name']} ({shards} shards) → {CONSUMER}: batches of ≤"
            f"{source.get('BatchSize')}, window {source.get('MaximumBatchingWindowInSeconds')} s, "
            f"from {source.get('StartingPosition')}",
            f"  status table         {d['table_name']}",
            f"  notifications        {d['topic_arn']}",
            f"  dead letters         {d['dead_letter_queue_url']}",
            f"  function logs        {', '.join(_shown(Path(p)) for p in d['logs'].values())}",
            *([f"  Twilio REST stand-in {d['twilio_api_url']}  → {RECONCILER} (no schedule: not run by itself)"]
              if self.twilio_api else []),
            "",
            "Try it (in another terminal):",
            "  twilio-sink send webhook events/samples/cloudevents.json   # signed POST (--curl prints the curl command)",
            "  twilio-sink send kinesis events/samples/cloudevents.json   # PutRecords on the stream",
            "  twilio-sink status --local list                                    # the status table",
            "",
        ])

    def _log_request(self, event: dict, status: int, body: bytes) -> None:
        self.say(f"  webhook  {event['routeKey']} from {event['requestContext']['http']['sourceIp']} → {status} "
                 f"{body.decode('utf-8', 'replace')[:200]}")

    def _log_batch(self, result: BatchResult) -> None:
        if result.failed_from is None:
            outcome = "ok"
        elif result.gave_up:
            outcome = f"retries exhausted from {result.failed_from}: metadata sent to StreamFailureQueue"
        else:
            outcome = f"retrying from {result.failed_from}" + (f" ({result.error})" if result.error else "")
        self.say(f"  kinesis  {result.shard_id}: batch of {result.size} → {outcome}")

    # ------------------------------------------------------------------------------ stop

    def stop(self) -> None:
        while self._started:
            self._started.pop()()

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def parse_parameters(values: list[str]) -> dict[str, str]:
    parameters = {}
    for value in values:
        name, sep, setting = value.partition("=")
        if not sep or not name:
            raise argparse.ArgumentTypeError(f"--parameter expects Name=Value, got {value!r}")
        parameters[name] = setting
    return parameters


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twilio-sink serve", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Everything listens on 127.0.0.1 only. Port 0 picks a free port.")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 3000)),
                        help="webhook HTTP port (default 3000, or $PORT)")
    parser.add_argument("--aws-port", type=int, default=int(os.environ.get("AWS_PORT", 5000)),
                        help="moto server port (default 5000, or $AWS_PORT)")
    parser.add_argument("--public-base-url", default=os.environ.get("PUBLIC_BASE_URL", ""),
                        help="the base URL Twilio calls when it reaches this machine through a tunnel, e.g. "
                             "https://abc.ngrok.app (default $PUBLIC_BASE_URL, else http://127.0.0.1:<port>); "
                             "the signature covers this URL")
    parser.add_argument("--auth-token", default=os.environ.get("TWILIO_AUTH_TOKEN") or LOCAL_TEST_AUTH_TOKEN,
                        help="the token deliveries are signed with: your account's for real Twilio through a "
                             "tunnel (default $TWILIO_AUTH_TOKEN, else the local test token)")
    parser.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE",
                        help="override a template parameter, e.g. StreamStartingPosition=TRIM_HORIZON (repeatable)")
    parser.add_argument("--twilio-api-port", type=int, default=None,
                        help="also serve a stand-in of Twilio's REST API on this port (0: a free one) and start "
                             "the reconciler function pointed at it (TwilioApiBaseUrl)")
    parser.add_argument("--state-file", type=Path, default=STATE_FILE,
                        help=f"where to write the stack's endpoints for other commands (default {STATE_FILE.relative_to(ROOT)})")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        parameters = parse_parameters(args.parameter)
    except argparse.ArgumentTypeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    stopping = threading.Event()
    # Ctrl-C and SIGTERM stop cleanly, also when started in the background (where SIGINT is ignored).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    server = LocalServer(args.port, args.aws_port, args.public_base_url, parameters, args.state_file,
                         say=lambda line: print(line, flush=True), auth_token=args.auth_token,
                         twilio_api_port=args.twilio_api_port)
    try:
        server.start()
    except (OSError, RuntimeError, ValueError) as error:
        print(f"error: could not start the local stack: {error}", file=sys.stderr)
        return 1
    if not stopping.is_set():
        print(server.banner(), flush=True)
    while not stopping.wait(0.5):
        pass
    print("→ stopping…", flush=True)
    server.stop()
    print("stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
