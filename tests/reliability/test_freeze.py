"""Nothing of a webhook invocation runs after its answer: Lambda's freeze, with real processes and SIGSTOP.

Lambda freezes an execution environment as soon as its handler returns. Work left running then stops
wherever it is and resumes only when the environment is invoked again, perhaps after Twilio's retry
was answered by another container that took the delivery over once the claims' lease ended. Each
test runs webhook containers as processes (tests/reliability/freeze_worker.py) against one moto server:
1. container A gets a delivery (10 messages, 3 events each) with a deadline so short that it answers
   503 at once, and is frozen (a real SIGSTOP) right after its answer, at the point its work has reached
   then: after its state write, before its publish, between publish requests, before its history
   write, or, when nothing of the invocation runs after the answer, at the answer itself;
2. time moves past A's lease (every container's clock: the clock file);
3. container B gets Twilio's retry of the delivery, until Twilio would stop (not 5xx);
4. A is resumed (SIGCONT) and reused for the next delivery: the same events and each message's next.
Then: no notification doubled, no status regressed, nothing lost (each entity's notifications chain
from null to its winner, every event has its history, no claim is left unpublished).
"""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from sink_dev.paths import ROOT
from sink_dev.samples import LOCAL_TEST_AUTH_TOKEN, webhook_body
from sink_local.stack import FAKE_CREDENTIALS, Stack
from tests.reliability.freeze_worker import POINTS
from tests.reliability.test_parallel_doors import AtomicCalls, check_against_the_model
from tests.support import factories as f

MESSAGES = 10
# Short enough that the deadline passes before any work is done: the answer comes first.
FIRST_DEADLINE_SECONDS = 0.001
# Moves every container's clock past any lease (the webhook's timeout plus the clock skew margin).
PAST_THE_LEASE_SECONDS = 60
# Every other attempt: the longest deadline the webhook allows, so that a loaded machine does not make
# it answer 503 (Twilio's retries would absorb it, but need not).
DEADLINE_SECONDS = 4.5
REPORT_TIMEOUT_SECONDS = 60  # a container that says nothing for this long is stuck: fail, do not hang
TWILIO_ATTEMPTS = 5


@pytest.fixture
def moto_server():
    server = make_server("127.0.0.1", 0, AtomicCalls(), threaded=True)
    # shutdown() waits for the serving loop's next poll: every 50 ms rather than the default 500 ms
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    yield url
    # moto's state is the process's, not the server's: the next test starts from an empty AWS
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).close()
    server.shutdown()
    thread.join()


class Container:
    """A webhook container process: commands in, reports out (see freeze_worker)."""

    def __init__(self, name: str, env: dict[str, str], clock_file: Path, errors: Path):
        self.name = name
        self.errors = errors
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.freeze_worker", str(clock_file)], cwd=ROOT, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors.open("w"))
        self.reports: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.reports.put(json.loads(line))
        self.reports.put({"exited": self.process.wait()})

    def expect(self, key: str):
        try:
            report = self.reports.get(timeout=REPORT_TIMEOUT_SECONDS)
        except queue.Empty:
            raise AssertionError(f"container {self.name} said nothing; stderr: {self.errors.read_text()[-3000:]}") from None
        assert key in report, f"container {self.name}: expected {key}, got {report}; {self.errors.read_text()[-3000:]}"
        return report[key]

    def post(self, body: str, deadline: float | None = None, freeze: str | None = None,
             stall: str | None = None) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"body": body, "deadline": deadline, "freeze": freeze,
                                             "stall": stall}) + "\n")
        self.process.stdin.flush()

    def frozen(self) -> str:
        """Where it stopped itself, once the kernel has it stopped."""
        where = self.expect("frozen")
        stat = Path(f"/proc/{self.process.pid}/stat")
        while stat.read_text().rsplit(")", 1)[1].split()[0] != "T":
            time.sleep(0.01)  # the SIGSTOP it sent itself is being delivered
        return where

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def close(self) -> None:
        self.resume()
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=REPORT_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()


class World:
    def __init__(self, url: str, tmp_path: Path):
        self.stack = Stack(LOCAL_TEST_AUTH_TOKEN, endpoint_url=url)
        self.clock_file = tmp_path / "clock"
        self.clock_file.write_text("0")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
        env |= FAKE_CREDENTIALS | {"AWS_ENDPOINT_URL": url, "POWERTOOLS_TRACE_DISABLED": "1",
                                   "POWERTOOLS_SERVICE_NAME": "freeze", "POWERTOOLS_METRICS_NAMESPACE": "TwilioEventSink",
                                   "POWERTOOLS_LOG_LEVEL": "ERROR",
                                   "FUNCTION_TIMEOUT_SECONDS": str(self.stack.function_timeout("WebhookFunction"))}
        env |= self.stack.function_environment("WebhookFunction")
        self.a = Container("A", env, self.clock_file, tmp_path / "a.err")
        self.b = Container("B", env, self.clock_file, tmp_path / "b.err")
        self.a.expect("ready"), self.b.expect("ready")

    def pass_the_lease(self) -> None:
        self.clock_file.write_text(str(float(self.clock_file.read_text()) + PAST_THE_LEASE_SECONDS))

    def close(self) -> None:
        self.a.close(), self.b.close()


@pytest.fixture
def world(moto_server, tmp_path):
    world = World(moto_server, tmp_path)
    yield world
    world.close()


def deliveries() -> tuple[list[dict], list[dict]]:
    """A delivery of 10 messages' first three events, and the next one: the same events and each one's `read`."""
    first = [f.message(status, message_id=f"MF{n}", seconds=second)
             for n in range(MESSAGES) for second, status in enumerate(("queued", "sent", "delivered"))]
    return first, first + [f.message("read", message_id=f"MF{n}", seconds=3) for n in range(MESSAGES)]


def deliver(container: Container, body: str) -> list[int]:
    """Twilio's rule: the whole body again after a 5xx or 429; answers = status per attempt."""
    answers: list[int] = []
    while len(answers) < TWILIO_ATTEMPTS:
        container.post(body, deadline=DEADLINE_SECONDS)
        answers.append(container.expect("answered"))
        container.expect("idle")
        if answers[-1] < 500 and answers[-1] != 429:
            break
    return answers


@pytest.mark.parametrize("point", POINTS)
def test_a_container_frozen_after_its_answer_and_resumed_later_publishes_nothing_twice(world, point):
    first, second = deliveries()
    # Given container A answered the delivery 503 at its deadline and froze right after the answer,
    # wherever the invocation's work had got to
    world.a.post(webhook_body(first), deadline=FIRST_DEADLINE_SECONDS, freeze=point)
    assert world.a.expect("answered") == 503
    frozen_at = world.a.frozen()
    # When, past A's lease, container B gets Twilio's retries, A is resumed and gets the next delivery
    world.pass_the_lease()
    assert deliver(world.b, webhook_body(first))[-1] == 200
    world.a.resume()
    world.a.expect("idle")
    assert deliver(world.a, webhook_body(second))[-1] == 200
    # Then every change was published once, nothing regressed and nothing was lost
    assert frozen_at in (point, "answer")
    check_against_the_model(world.stack, second)
    # and nothing of the first invocation ran after its answer
    assert frozen_at == "answer", f"work of the invocation was still at {point} after its answer"


def test_a_resumed_container_leaves_the_claims_of_a_live_holder_alone(world):
    first, second = deliveries()
    # Given A answered at its deadline and froze after its answer, once its state writes were done
    world.a.post(webhook_body(first), deadline=FIRST_DEADLINE_SECONDS, freeze="after_state_write")
    assert world.a.expect("answered") == 503
    world.a.frozen()
    # and, past A's lease, B took the delivery over and is at work (stopped after a state write)
    world.pass_the_lease()
    world.b.post(webhook_body(first), deadline=DEADLINE_SECONDS, stall="after_state_write")
    assert world.b.frozen() == "after_state_write"
    held = claims(world.stack)
    # When A resumes while B still holds its claims
    world.a.resume()
    world.a.expect("idle")
    # Then A left B's claims as they were
    assert claims(world.stack) == held
    # and once B ends (past its deadline if the machine is slow: then Twilio retries), every change was
    # published once
    world.b.resume()
    answered = world.b.expect("answered")
    world.b.expect("idle")
    if answered != 200:
        assert deliver(world.b, webhook_body(first))[-1] == 200
    assert deliver(world.a, webhook_body(second))[-1] == 200
    check_against_the_model(world.stack, second)


def claims(stack: Stack) -> dict[str, dict[str, str]]:
    return {pk: state.get("claims", {}) for pk, state in stack.states().items()}


