"""Both functions under real `sam local invoke`, in SAM's Lambda container, against the local stack.

What runs is what a user runs with `twilio-sink invoke`: the template built for this machine's
architecture, SAM's container (its runtime interface emulator, the layer added to the image, the
template's environment with the local stack's names, LocalEndpointUrl), on a Docker engine: the
user's own, or where none answers, this project's dockerd started as root and stopped by its pid, with
the stand-in Lambda image (sink_local.docker). The image is built once and kept in ~/.cache.
Where there is neither Docker nor root with Debian's docker.io and debootstrap, these tests are skipped
and say why.
"""

import json

import pytest
from moto.moto_api._internal.models import moto_api_backend

from sink_dev.paths import EVENTS
from sink_local import docker
from sink_local.invoke import invoke_local
from sink_local.serve import LocalServer
from tests.support.expectations import expected_final, expected_per_event

REASON = docker.unavailable_reason()
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(REASON is not None, reason=f"sam local invoke cannot run here: {REASON}")]


@pytest.fixture(scope="module")
def engine():
    with docker.Engine() as engine:
        yield engine, engine.ensure_lambda_image()


@pytest.fixture
def served(tmp_path):
    """`twilio-sink serve`'s stack (moto on 127.0.0.1), on free ports, for one test."""
    # The webhook's longest deadline, as in the other tests: a busy test machine is slower than Lambda.
    with LocalServer(port=0, aws_port=0, parameters={"WebhookDeadlineSeconds": "4.5"}, state_file=None,
                     log_dir=tmp_path, say=lambda _: None) as server:
        yield server
    # moto's servers in one process share their state: the next test's stack starts from nothing.
    moto_api_backend.reset()


def invoke(engine, host_build, served, logical_id: str, event_file) -> dict:
    engine, stand_in = engine
    return invoke_local(engine, host_build, logical_id, event_file, served.describe(), stand_in)


def test_consumer_in_sams_container_applies_every_kinesis_record(engine, host_build, served):
    event_file = EVENTS / "kinesis" / "all.json"
    records = json.loads(event_file.read_text())["Records"]

    answer = invoke(engine, host_build, served, "StreamConsumerFunction", event_file)

    assert answer == {"batchItemFailures": []}
    states = served.stack.states()
    for expected in expected_final():
        assert states[f"{expected['entity']}#{expected['id']}"]["status"] == expected["status"], expected
    assert len(states) == len(expected_final())
    # events/kinesis/all.json replays the samples in order: every record is an applied change.
    assert len(served.stack.notifications()) == len(records)
    assert served.stack.dead_letters() == []


def test_webhook_in_sams_container_accepts_a_signed_delivery(engine, host_build, served):
    event_file = EVENTS / "webhook" / "message-queued.json"
    (sample,) = json.loads(json.loads(event_file.read_text())["body"])
    expected = expected_per_event(sample)

    answer = invoke(engine, host_build, served, "WebhookFunction", event_file)

    assert answer["statusCode"] == 200, answer
    state = served.stack.states()[f"{expected['entity']}#{expected['id']}"]
    assert state["status"] == expected["status"]
    (notification,) = served.stack.notifications()
    assert (notification["entity"], notification["id"], notification["status"]) == (
        expected["entity"], expected["id"], expected["status"])
