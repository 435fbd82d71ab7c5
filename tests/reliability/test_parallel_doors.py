"""Exactly once under real parallelism: function containers as processes, both doors, the same entities.

Five worker processes (tests/reliability/parallel_worker.py) load the real functions and start at
the same instant against one moto server: two stream consumers (every event written twice, as with
ParallelizationFactor > 1 or Twilio writing a record again), one webhook container whose first
attempts answer 503 at a 50 ms deadline (what they wrote is released for Twilio's retry), and two
webhook containers posting the same bodies at the same moments.
Each worker has its own order and batches; every event arrives five times. No fault is injected, so
the guarantee is exactly once, checked against the precedence model: each entity ends on its winner,
no event is published twice, and each entity's notifications, in precedence order, chain through
`previous_status` from null to the winner (a missing or repeated change breaks the chain).

moto's threaded server handles requests concurrently, and a conditional write can interleave with
another request for the same item; DynamoDB makes each call atomic, so the server here runs one
request at a time (a lock around the WSGI app), while the workers' requests still race each other.
"""

import io
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from sink_dev.paths import ROOT
from sink_dev.samples import LOCAL_TEST_AUTH_TOKEN
from sink_local.stack import FAKE_CREDENTIALS, Stack
from tests.integration.test_delivery_guarantees import entity_key, precedence, status_of
from tests.support import factories as f
from tests.support.expectations import unpublished

MESSAGES, BRANDS = 12, 4
START_DELAY_SECONDS = 4.0  # time for every worker to import its function before the common start


class AtomicCalls:
    """One request at a time through moto, as DynamoDB makes each call atomic."""

    def __init__(self):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self.app = DomainDispatcherApplication(create_backend_app)
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        # The body is read before the lock: a client stopped mid-request (test_freeze.py's SIGSTOP)
        # must not hold every other client's calls.
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read(length))
        with self.lock:
            return list(self.app(environ, start_response))


@pytest.fixture
def moto_server():
    server = make_server("127.0.0.1", 0, AtomicCalls(), threaded=True)
    # shutdown() waits for the serving loop's next poll: every 50 ms rather than the default 500 ms
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def lifecycles() -> list[dict]:
    events = []
    for n in range(MESSAGES):
        statuses = ["queued", "sent", "delivered"] + (["read"] if n % 2 else [])
        events += [f.message(status, message_id=f"MP{n}", seconds=second) for second, status in enumerate(statuses)]
    for n in range(BRANDS):
        events += [f.brand(kind, brandsid=f"BP{n}", seconds=second)
                   for second, kind in ((0, "brand-unverified"), (5, "brand-registered"), (3, "brand-failure"))]
    return events


def batches(events: list[dict], seed: int, size: int) -> list[list[dict]]:
    order = list(events)
    random.Random(seed).shuffle(order)
    return [order[i:i + size] for i in range(0, len(order), size)]


def run_workers(url: str, stack: Stack, tmp_path: Path, events: list[dict]) -> list[dict]:
    environment = {"StreamConsumerFunction": stack.function_environment("StreamConsumerFunction"),
                   "WebhookFunction": stack.function_environment("WebhookFunction")}
    base = FAKE_CREDENTIALS | {"AWS_ENDPOINT_URL": url, "POWERTOOLS_TRACE_DISABLED": "1",
                               "POWERTOOLS_SERVICE_NAME": "parallel", "POWERTOOLS_METRICS_NAMESPACE": "TwilioEventSink",
                               "POWERTOOLS_LOG_LEVEL": "ERROR"}
    start_at = time.time() + START_DELAY_SECONDS
    specs = [
        ("StreamConsumerFunction", {"function": "stream_consumer", "seed": 1, "jobs": [
            {"events": batch, "first_sequence": 1_000 + 100 * i} for i, batch in enumerate(batches(events, 1, 10))]}),
        ("StreamConsumerFunction", {"function": "stream_consumer", "seed": 2, "jobs": [
            {"events": batch, "first_sequence": 9_000 + 100 * i} for i, batch in enumerate(batches(events, 2, 10))]}),
        ("WebhookFunction", {"function": "webhook", "seed": 3, "first_deadline": 0.05,
                             "jobs": [{"events": body} for body in batches(events, 3, 8)]}),
        # two containers posting the same bodies at the same moments (a delivery and its retry)
        ("WebhookFunction", {"function": "webhook", "seed": 4, "jobs": [{"events": body} for body in batches(events, 4, 8)]}),
        ("WebhookFunction", {"function": "webhook", "seed": 5, "jobs": [{"events": body} for body in batches(events, 4, 8)]}),
    ]
    processes = []
    for n, (logical_id, spec) in enumerate(specs):
        spec |= {"start_at": start_at, "timeout_seconds": stack.function_timeout(logical_id)}
        spec_file, result_file = tmp_path / f"spec{n}.json", tmp_path / f"result{n}.json"
        spec_file.write_text(json.dumps(spec))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
        processes.append((subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.parallel_worker", str(spec_file), str(result_file)],
            cwd=ROOT, env=env | base | environment[logical_id], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE),
            result_file))
    results = []
    for process, result_file in processes:
        _, errors = process.communicate(timeout=120)
        assert process.returncode == 0, errors.decode()[-3000:]
        results.append(json.loads(result_file.read_text()))
    return results


def test_both_doors_at_once_publish_each_change_exactly_once_in_a_chain(moto_server, tmp_path):
    # Given a stack in one moto server, and every event of 16 entities in 5 deliveries (2 streams, 3 webhooks)
    stack = Stack(LOCAL_TEST_AUTH_TOKEN, endpoint_url=moto_server)
    events = lifecycles()
    # When five containers (see the module docstring) run them at the same instant
    results = run_workers(moto_server, stack, tmp_path, events)
    # Then the workers really overlapped, every delivery ended in success, and some webhook first
    # attempts answered 503 at their deadline while their work went on
    assert max(r["started"] for r in results) < min(r["ended"] for r in results)
    assert all(answers[-1] == 0 for r in results[:2] for answers in r["answers"]), "a batch kept failing"
    assert all(answers[-1] == 200 for r in results[2:] for answers in r["answers"]), "a webhook delivery kept failing"
    assert any(answers[0] == 503 for answers in results[2]["answers"]), "no first attempt outlived its deadline"
    check_against_the_model(stack, events)


def check_against_the_model(stack: Stack, events: list[dict]) -> None:
    by_entity: dict[str, list[dict]] = defaultdict(list)
    for event in events:
        by_entity[entity_key(event)].append(event)
    by_id = {event["id"]: event for event in events}
    states, notes = stack.states(), stack.notifications()
    # no event published twice (checked first: the count says how bad an interleaving was)
    twice = sorted(event_id for event_id, count in Counter(n["event_id"] for n in notes).items() if count > 1)
    assert not twice, (f"{len(twice)} of {len(by_id)} changes published more than once, "
                       f"e.g. {[by_id[i]['data'] for i in twice[:3]]}")
    # each entity ends on its precedence winner, with every event in its history
    for pk, own in by_entity.items():
        winner = max(own, key=precedence)
        assert (states[pk]["event_id"], states[pk]["status"]) == (winner["id"], status_of(winner)), pk
        assert {item["event_id"] for item in stack.history(pk)} == {e["id"] for e in own}, pk
    # each entity's notifications chain from null to its winner, in precedence order
    published: dict[str, list[dict]] = defaultdict(list)
    for note in notes:
        published[f"{note['entity']}#{note['id']}"].append(note)
    for pk, own in by_entity.items():
        chain = sorted(published[pk], key=lambda n: precedence(by_id[n["event_id"]]))
        assert [n["previous_status"] for n in chain] == [None] + [n["status"] for n in chain[:-1]], pk
        assert chain[-1]["event_id"] == max(own, key=precedence)["id"], pk
    assert unpublished(stack) == set() and stack.dead_letters() == []
