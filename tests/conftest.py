"""Shared fixtures: a moto AWS built from template.yaml, and the two real Lambda handlers."""

import functools
import os

import botocore.loaders
import botocore.session
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from sink_dev.paths import ROOT
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

# Every test makes new boto3 sessions (moto resets the default one, each test resets the core's), and
# each session's loader parsed botocore's service models and endpoint data again: a third of the
# suite's CPU. One loader per search path for the whole run reads each file once; what a session or
# client does with the parsed data is unchanged (a Lambda container's one session shares it the same way).
botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)


def _reset_caches():
    from twilio_sink import aws, config, pipeline

    aws.reset_clients()
    config.settings.cache_clear()
    pipeline.default_pipeline.cache_clear()


# A test's line for every run's summary, `record_property(SHOWN, text)`: also from parallel workers,
# whose tests' own output is not shown.
SHOWN = "shown"


def pytest_terminal_summary(terminalreporter):
    for report in terminalreporter.getreports("passed") + terminalreporter.getreports("failed"):
        for name, value in report.user_properties:
            if name == SHOWN:
                terminalreporter.write_line(f"{report.nodeid}: {value}")


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


# What `make test-fast` leaves to `make test` (docs/testing.md#the-quick-loop), besides what its module
# marks slow itself: modules whose tests each start the local stack's processes, or drive a whole moto
# stack through many invocations (every sample, attack or fault kind, through both doors). The quick loop
# keeps the rules, the docs, the template, and one module of each kind of moto-backed test.
LEFT_TO_MAKE_TEST = {
    # the local stack's processes, or a moto server and worker processes
    "tests/operate/test_run.py", "tests/operate/test_serve.py", "tests/operate/test_send.py",
    "tests/reliability/test_parallel_doors.py", "tests/reliability/test_recovery_commands.py",
    "tests/security/test_attack_on_local_stack.py",
    # every sample, family, attack or answer of Twilio through both doors (the quick loop keeps
    # tests/integration/test_catalog.py, test_batching.py, test_delivery_outcomes.py, the property test,
    # tests/security/test_strict_json.py, and tests/unit/test_secret_shapes.py for the secrets)
    "tests/integration/test_stream_consumer.py", "tests/integration/test_webhook.py",
    "tests/integration/test_type_confusion.py", "tests/seeds/test_what_twilio_sends.py",
    "tests/security/test_foreign_accounts.py", "tests/security/test_webhook_attacks.py",
    "tests/security/test_secret_shapes.py",
    "tests/reconcile/test_reconciler.py", "tests/reconcile/test_backfill.py", "tests/reconcile/test_families.py",
}


@pytest.hookimpl(tryfirst=True)  # before `-m "not slow"` deselects
def pytest_collection_modifyitems(items):
    # A module renamed or removed would leave its successor in the quick loop unnoticed.
    gone = sorted(path for path in LEFT_TO_MAKE_TEST if not (ROOT / path).is_file())
    if gone:
        raise pytest.UsageError(f"LEFT_TO_MAKE_TEST names modules that do not exist: {gone}")
    for item in items:
        if item.nodeid.split("::", 1)[0] in LEFT_TO_MAKE_TEST:
            item.add_marker(pytest.mark.slow)
