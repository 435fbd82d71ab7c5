"""Fixtures of the reconciliation tests: the fake Twilio REST API and a reconciler on the moto stack."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.fake_twilio import ACCOUNT, FakeTwilio


@pytest.fixture
def twilio_api():
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def make_reconciler(stack, twilio_api):
    """A reconciler on the stack's pipeline whose Twilio is the fake; `now` a day ahead (all due)."""
    from twilio_sink.pipeline import default_pipeline
    from twilio_sink.reconcile import Reconciler
    from twilio_sink.twilio_rest import ApiKey, Twilio

    sleeps: list[float] = []
    rng = random.Random(14)  # which index shard each run starts from

    def make(now: datetime | None = None, keys: dict | None = None) -> Reconciler:
        pipeline = default_pipeline()
        twilio = Twilio({ACCOUNT: ApiKey("SK" + "1" * 32, "api-key-secret")} if keys is None else keys,
                        http_client=twilio_api.http_client(), sleep=sleeps.append)
        moment = now or datetime.now(UTC) + timedelta(days=1)
        return Reconciler(pipeline.store, pipeline, twilio, now=lambda: moment, rng=rng)

    make.sleeps = sleeps
    return make
