"""One webhook container in its own process, driven one request at a time, frozen where Lambda freezes it.

    python -m tests.reliability.freeze_worker <clock file>

Lambda freezes an execution environment as soon as its handler returns: every thread stops where it
is, and resumes only if the environment is invoked again, seconds or hours later. This process
models that with a real SIGSTOP of itself, at a point the parent names:
- `freeze`: one of POINTS. The process stops there if the invocation reaches it after it answered
  (work left running past the answer, as a worker thread would be); if nothing of the invocation
  reaches it after the answer, the process stops right after the answer instead ("answer").
- `stall`: the process stops at that point even before answering: an invocation still at work, whose
  claims are live (the parent holds it there while another container acts).
The parent resumes it with SIGCONT. The core's wall clock (claims' leases) is the real one plus the
offset in the clock file, shared by every container: the parent moves time past a lease at once.

Commands on stdin, one JSON object per line: {"body": ..., "deadline": seconds or null, "freeze": point
or null, "stall": point or null}. Reports on the original stdout, one JSON object per line:
{"answered": status}, {"frozen": point}, {"idle": true}. The function's own output (EMF) goes to /dev/null.
"""

import json
import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

POINTS = ("after_state_write", "before_publish", "between_publish_requests", "before_history")
# How long a point reached before the answer waits for it (the old worker thread outran its deadline).
ANSWER_WAIT_SECONDS = 5.0


class Freezer:
    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()
        self.freeze: str | None = None
        self.stall: str | None = None
        self.answered = threading.Event()
        self.work_done = threading.Event()
        self.publish_requests = 0
        # State writes in flight, and whether new ones wait: a stall stops the process only once the
        # other threads' writes have landed, so what the parent reads then stays as it is while stopped.
        self.writes = threading.Condition()
        self.writing = 0
        self.holding = False

    def report(self, **message) -> None:
        with self.lock:
            self.out.write(json.dumps(message) + "\n")
            self.out.flush()

    def stop_here(self, where: str) -> None:
        self.report(frozen=where)
        os.kill(os.getpid(), signal.SIGSTOP)

    def write_starts(self) -> None:
        with self.writes:
            self.writes.wait_for(lambda: not self.holding)
            self.writing += 1

    def write_ends(self) -> None:
        with self.writes:
            self.writing -= 1
            self.writes.notify_all()

    def checkpoint(self, point: str) -> None:
        if point == self.stall:
            self.stall = None
            with self.writes:
                self.holding = True
                self.writes.wait_for(lambda: self.writing == 0)
            self.stop_here(point)
            with self.writes:
                self.holding = False
                self.writes.notify_all()
        elif point == self.freeze:
            # Lambda freezes only a process whose handler returned: wait for the answer (a worker thread
            # reaching here before its deadline answer would otherwise pass unfrozen).
            if not self.answered.wait(ANSWER_WAIT_SECONDS):
                self.report(reached_before_answer=point)
                return
            self.freeze = None
            self.stop_here(point)


def install(freezer: Freezer, clock_file: Path) -> None:
    from twilio_sink import notify, pipeline, store, webhook

    def clock() -> float:
        return time.time() + float(clock_file.read_text() or 0)

    pipeline.default_pipeline().clock = clock

    publish_batch = notify.Notifier._publish_batch

    def _publish_batch(self, notifications):
        with freezer.lock:
            number, freezer.publish_requests = freezer.publish_requests, freezer.publish_requests + 1
        freezer.checkpoint("before_publish" if number == 0 else "between_publish_requests")
        return publish_batch(self, notifications)

    put_history = store.StatusStore.put_history

    def _put_history(self, items):
        freezer.checkpoint("before_history")
        return put_history(self, items)

    save_state = store.StatusStore.save_state

    def _save_state(self, pk, write):
        freezer.write_starts()
        try:
            save_state(self, pk, write)
        finally:
            freezer.write_ends()
        freezer.checkpoint("after_state_write")

    handle = webhook.handle

    def _handle(*args, **kwargs):
        try:
            return handle(*args, **kwargs)
        finally:
            freezer.work_done.set()

    notify.Notifier._publish_batch = _publish_batch
    store.StatusStore.put_history = _put_history
    store.StatusStore.save_state = _save_state
    webhook.handle = _handle


def main() -> None:
    # The reports keep the real stdout; the function's EMF lines and logs go to /dev/null.
    out = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process

    from sink_dev.samples import webhook_event
    from sink_local.stack import LambdaContext, load_function
    from twilio_sink import config

    function = load_function("webhook")
    freezer = Freezer(out)
    install(freezer, Path(sys.argv[1]))
    timeout = float(os.environ["FUNCTION_TIMEOUT_SECONDS"])
    freezer.report(ready=True)
    for line in sys.stdin:
        command = json.loads(line)
        freezer.freeze, freezer.stall, freezer.publish_requests = command.get("freeze"), command.get("stall"), 0
        freezer.answered.clear()
        freezer.work_done.clear()
        if command.get("deadline"):
            os.environ["WEBHOOK_DEADLINE_SECONDS"] = str(command["deadline"])
        else:
            os.environ.pop("WEBHOOK_DEADLINE_SECONDS", None)
        config.settings.cache_clear()
        event = webhook_event(command["body"])
        event["requestContext"]["requestId"] = str(uuid.uuid4())  # API Gateway: one id per request
        response = function.lambda_handler(event, LambdaContext(deadline=time.monotonic() + timeout))
        freezer.report(answered=response["statusCode"])
        freezer.answered.set()  # after the report: a point reached now reports its freeze after the answer
        if freezer.freeze:
            # Whatever of the invocation still runs may reach the point and freeze there; else the
            # process freezes now that nothing of the invocation runs.
            freezer.work_done.wait()
            if freezer.freeze:
                freezer.freeze = None
                freezer.stop_here("answer")
        freezer.work_done.wait()
        freezer.report(idle=True)


if __name__ == "__main__":
    main()
