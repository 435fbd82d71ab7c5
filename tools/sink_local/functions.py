"""A function served locally the way Lambda runs it: its own process (a "container") with only its
template environment, its `app.lambda_handler` invoked one event at a time, its timeout enforced.

The parent sends one JSON line per invocation on the worker's stdin and reads one JSON line back on a
private channel; everything the function prints (logs, EMF metrics) goes to its log file, as it would
go to CloudWatch Logs.
"""

import argparse
import json
import os
import select
import subprocess
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path

from sink_dev.paths import ROOT
from sink_local.stack import ACCOUNT_ID, REGION, LambdaContext

STARTUP_SECONDS = 60


class FunctionError(Exception):
    """The invocation failed the way Lambda reports a function error (exception, crash or timeout)."""

    def __init__(self, error_type: str, message: str):
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type


class LocalFunction:
    """One worker process for one function; `invoke` is serialized like a single Lambda container."""

    def __init__(self, logical_id: str, code_dir: str, environment: dict[str, str], timeout: int, log_path: Path):
        self.logical_id = logical_id
        self.code_dir = code_dir
        self.environment = environment
        self.timeout = timeout
        self.log_path = log_path
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._log = None

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.logical_id}"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self._spawn()

    def _spawn(self) -> None:
        env = self.environment | {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / self.code_dir), str(ROOT / "layers" / "core"),
                                           str(ROOT)]),
            "PYTHONUNBUFFERED": "1",
        }
        self._process = subprocess.Popen(
            [sys.executable, "-m", "sink_local.functions", "--worker", self.logical_id, str(self.timeout)],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
        )
        reply = self._read(STARTUP_SECONDS)
        if reply is None or "ready" not in reply:
            self._kill()
            raise RuntimeError(f"{self.logical_id} did not start (see {self.log_path})")

    def invoke(self, event: dict) -> dict | None:
        """The handler's return value, or FunctionError."""
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._spawn()  # the previous "container" died: Lambda starts a new one
            request_id = str(uuid.uuid4())
            self._process.stdin.write(json.dumps({"event": event, "request_id": request_id}) + "\n")
            self._process.stdin.flush()
            reply = self._read(self.timeout + 1)
            if reply is None:
                timed_out = self._process.poll() is None
                self._kill()
                if timed_out:
                    raise FunctionError("Sandbox.Timedout", f"Task timed out after {self.timeout}.00 seconds")
                raise FunctionError("Runtime.ExitError", "the function process exited")
            if "error" in reply:
                raise FunctionError(reply["error"]["errorType"], reply["error"]["errorMessage"])
            return reply["result"]

    def _read(self, timeout: float) -> dict | None:
        ready, _, _ = select.select([self._process.stdout], [], [], timeout)
        if not ready:
            return None
        line = self._process.stdout.readline()
        return json.loads(line) if line else None

    def _kill(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def stop(self) -> None:
        with self._lock:
            if self._process is None:
                return
            if self._process and self._process.poll() is None:
                self._process.stdin.close()  # end of input: the worker returns
                try:
                    self._process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._kill()
            if self._log:
                self._log.close()


def worker(logical_id: str, timeout: int) -> int:
    """Inside the function's process: import app.py, then answer one invocation per input line."""
    channel = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # whatever the function prints goes to its log, not into the channel
    sys.stdout = sys.stderr
    import app  # noqa: PLC0415 - functions/<dir> is first on PYTHONPATH

    channel.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        context = LambdaContext(
            function_name=logical_id,
            invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{logical_id}",
            aws_request_id=request["request_id"],
            deadline=time.monotonic() + timeout,
        )
        try:
            reply = {"result": app.lambda_handler(request["event"], context)}
        except Exception as error:  # noqa: BLE001 - reported to the caller as Lambda reports it
            traceback.print_exc()
            reply = {"error": {"errorType": type(error).__name__, "errorMessage": str(error)}}
        channel.write(json.dumps(reply) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Internal: the process a locally served function runs in (started by sink_local.serve).")
    parser.add_argument("--worker", nargs=2, metavar=("LOGICAL_ID", "TIMEOUT"), required=True)
    args = parser.parse_args(argv)
    return worker(args.worker[0], int(args.worker[1]))


if __name__ == "__main__":
    sys.exit(main())
