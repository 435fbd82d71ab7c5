"""Shared fixtures: a moto AWS built from template.yaml, and the two real Lambda handlers."""

import os

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from sink_dev.samples import LOCAL_TEST_AUTH_TOKEN
from sink_local.stack import FAKE_CREDENTIALS, LambdaContext, Stack, load_function

# Set before any handler module is imported: Powertools reads them at import time.
os.environ.update(
    FAKE_CREDENTIALS
    | {
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_SERVICE_NAME": "tests",
        "POWERTOOLS_METRICS_NAMESPACE": "TwilioEventSink",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)


def _reset_caches():
    from twilio_sink import aws, config, pipeline

    aws.reset_clients()
    config.settings.cache_clear()
    pipeline.default_pipeline.cache_clear()


@pytest.fixture
def stack(monkeypatch):
    with mock_aws():
        built = Stack(LOCAL_TEST_AUTH_TOKEN)
        for name, value in built.env.items():
            monkeypatch.setenv(name, value)
        # The longest deadline the webhook allows: only the deadline tests (which set their own)
        # may answer 503 because moto is slow on a loaded machine.
        monkeypatch.setenv("WEBHOOK_DEADLINE_SECONDS", "4.5")
        _reset_caches()
        yield built
        _reset_caches()


@pytest.fixture(scope="session")
def consumer():
    return load_function("stream_consumer")


@pytest.fixture(scope="session")
def webhook():
    return load_function("webhook")


@pytest.fixture
def context():
    return LambdaContext()


@pytest.fixture
def fail(stack):
    """Make an AWS operation of the pipeline's own clients fail `times` times, then behave."""
    from twilio_sink import aws

    def inject(service: str, operation: str, times: int = 1, code: str = "ThrottlingException", when=None):
        client = aws.client(service)
        real = getattr(client, operation)
        state = {"left": times}

        def flaky(*args, **kwargs):
            if state["left"] > 0 and (when is None or when(kwargs)):
                state["left"] -= 1
                raise ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)
            return real(*args, **kwargs)

        setattr(client, operation, flaky)
        return state

    return inject
