"""Fixtures of the reconciliation tests: the stand-in of Twilio's REST API and a reconciler on the moto stack."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from sink_local.twilio_api import ACCOUNT, API_KEY_SECRET, API_KEY_SID, TwilioApi


@pytest.fixture
def twilio_api():
    with TwilioApi() as api:
        yield api


@pytest.fixture
def make_reconciler(stack, twilio_api):
    """A reconciler on the stack's pipeline whose Twilio is the stand-in; `now` a day ahead (all due)."""
    from twilio_sink.pipeline import default_pipeline
    from twilio_sink.reconcile.client import ApiKey, Twilio
    from twilio_sink.reconcile.run import Reconciler

    sleeps: list[float] = []
    rng = random.Random(14)  # which index shard each run starts from

    def make(now: datetime | None = None, keys: dict | None = None) -> Reconciler:
        pipeline = default_pipeline()
        twilio = Twilio({ACCOUNT: ApiKey(API_KEY_SID, API_KEY_SECRET)} if keys is None else keys,
                        base_url=twilio_api.base_url, sleep=sleeps.append)
        moment = now or datetime.now(UTC) + timedelta(days=1)
        return Reconciler(pipeline.store, pipeline, twilio, now=lambda: moment, rng=rng)

    make.sleeps = sleeps
    return make
