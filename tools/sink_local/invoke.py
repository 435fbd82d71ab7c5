"""`twilio-sink invoke`: one function on one event under `sam local invoke`, in SAM's Lambda container.

    twilio-sink invoke consumer events/kinesis/all.json            # against the local stack (`twilio-sink serve`)
    twilio-sink invoke webhook events/webhook/message-queued.json --stack twilio-sink   # a deployed stack's resources

The function is the template built for this machine's architecture (sink_dev.build, cached in .aws-sam/host),
run in SAM's container on a Docker engine (sink_local.docker: the user's own, else one this project starts
as root, with a stand-in of AWS's Lambda image). Its environment is the template's, with the stack's
resource names: the local stack's, which `serve` wrote to .serve/stack.json, or a deployed stack's
outputs (then the container calls AWS with the credentials SAM passes it).

Against the local stack, the container reaches it through a relay on the engine's bridge (SAM ignores
`--docker-network host`, and the local stack listens on 127.0.0.1 only), given to the functions as
AWS_ENDPOINT_URL: SAM's --env-vars sets only variables the template declares, and the template declares
it (from LocalEndpointUrl, absent in AWS unless given). The webhook's events/ are signed for the URL in their own headers, so
PUBLIC_BASE_URL is left empty (the URL is rebuilt from the request).
Prints the function's answer (JSON) on stdout; SAM's and the function's logs go to stderr.
"""

import argparse
import json
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit

from sink_dev import build
from sink_dev.paths import ROOT, TEMPLATE
from sink_dev.template import load_template
from sink_local.docker import Engine, EngineUnavailable
from sink_ops import locate

FUNCTIONS = {"consumer": "StreamConsumerFunction", "webhook": "WebhookFunction"}
BUILD_DIR = ROOT / ".aws-sam" / "host"


class Relay(socketserver.ThreadingTCPServer):
    """Forwards TCP connections from (host, port 0) to `target` on loopback, both ways, until closed."""

    daemon_threads = True

    def __init__(self, host: str, target: tuple[str, int]):
        self.target = target
        super().__init__((host, 0), _Pipe)
        # shutdown() waits for the serving loop's next poll: every 50 ms rather than the default 500 ms
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="relay", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "Relay":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()


class _Pipe(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        with socket.create_connection(self.server.target, timeout=60) as upstream:
            back = threading.Thread(target=_copy, args=(upstream, self.request), daemon=True)
            back.start()
            _copy(self.request, upstream)
            back.join(timeout=60)


def _copy(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the other side closed: the connection is over


def deployed_environment(logical_id: str, outputs: dict[str, str]) -> dict[str, str]:
    """The function's template variables that name a resource, valued from the stack output of that resource."""
    template = load_template(TEMPLATE)
    by_value = {json.dumps(output["Value"], sort_keys=True): name for name, output in template["Outputs"].items()}
    variables = template["Globals"]["Function"]["Environment"]["Variables"] | (
        template["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {}))
    environment = {}
    for name, value in variables.items():
        output = by_value.get(json.dumps(value, sort_keys=True))
        if output is not None and output in outputs:
            environment[name] = outputs[output]
    return environment


def sam_local_invoke(engine: Engine, built: Path, logical_id: str, event: Path, environment: dict[str, str],
                     stand_in: bool = False, region: str | None = None, timeout: int = 300) -> dict:
    """Run `sam local invoke` on the built template; the function's answer."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as env_file:
        json.dump({logical_id: environment}, env_file)
        env_file.flush()
        command = [str(build.SAM), "local", "invoke", logical_id, "--template", str(built), "--event", str(event),
                   "--env-vars", env_file.name, "--container-host-interface", "127.0.0.1"]
        if stand_in:
            command.append("--skip-pull-image")  # the image is the local stand-in: there is nothing to pull
        if region:
            command += ["--region", region]
        result = subprocess.run(command, env=build.sam_environment() | engine.env, capture_output=True, text=True,
                                timeout=timeout)
    sys.stderr.write(result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"sam local invoke failed ({result.returncode}):\n{result.stdout}")
    # stdout holds the function's answer; the function's own output (logs, EMF metrics) goes to stderr.
    return json.loads(result.stdout.strip().splitlines()[-1])


def invoke_local(engine: Engine, built: Path, logical_id: str, event: Path, served: dict, stand_in: bool) -> dict:
    """Invoke against a running local stack (`serve`'s description of itself)."""
    endpoint = urlsplit(served["endpoint_url"])
    with Relay(engine.bridge_gateway(), (endpoint.hostname, endpoint.port)) as relay:
        environment = served["environments"][logical_id] | {"PUBLIC_BASE_URL": "", "AWS_ENDPOINT_URL": relay.url}
        return sam_local_invoke(engine, built, logical_id, event, environment, stand_in, served["region"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twilio-sink invoke", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("function", choices=sorted(FUNCTIONS), help="which function")
    parser.add_argument("event", type=Path, help="a Lambda event file, e.g. one of events/")
    parser.add_argument("--stack", help="a deployed stack's name: its resources instead of the local stack's")
    parser.add_argument("--region", help="the deployed stack's region (default: your AWS configuration's)")
    parser.add_argument("--state-file", type=Path, default=locate.LOCAL_STACK_FILE,
                        help=f"the local stack's description (default {locate.LOCAL_STACK_FILE})")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logical_id = FUNCTIONS[args.function]
    try:
        served = None if args.stack else locate.local(args.state_file)
        outputs = locate.outputs(args.stack, args.region) if args.stack else None
        with Engine() as engine:
            stand_in = engine.ensure_lambda_image(say=lambda line: print(line, file=sys.stderr, flush=True))
            print("→ sam build for this machine's architecture (.aws-sam/host)", file=sys.stderr, flush=True)
            built = build.build(BUILD_DIR)
            if served is not None:
                answer = invoke_local(engine, built, logical_id, args.event.resolve(), served, stand_in)
            else:
                answer = sam_local_invoke(engine, built, logical_id, args.event.resolve(),
                                          deployed_environment(logical_id, outputs), stand_in=stand_in,
                                          region=args.region)
    except (locate.StackNotFound, EngineUnavailable, RuntimeError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
