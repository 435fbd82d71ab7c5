"""boto3 clients, created once per container behind one seam that tests can reset."""

import threading
from functools import cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

# Short timeouts and bounded retries: the webhook must answer Twilio within 5 s, and a stuck
# call is better retried by Lambda/Twilio than waited on. Client-side parameter validation is off:
# every request is built by this code (and checked against moto in tests), AWS validates anyway,
# and it cost ~10% of a DynamoDB request's CPU and ~30% of a PublishBatch's (see docs/performance.md).
CLIENT_CONFIG = Config(
    connect_timeout=2,
    read_timeout=3,
    retries={"mode": "standard", "max_attempts": 3},
    max_pool_connections=32,
    parameter_validation=False,
)



class PartialBatchError(Exception):
    """A batch API left part of its work undone even after retries (throttling)."""


# What an AWS call can raise that a later retry may fix (throttling, 5xx, timeouts, network).
AWS_ERRORS = (ClientError, BotoCoreError, PartialBatchError)


# A session is not thread-safe (its clients are): clients are made one at a time.
_creating = threading.Lock()


@cache
def _session() -> boto3.session.Session:
    # One session for all clients: each session lists botocore's ~400 service models and parses the
    # endpoint and retry data again, ~40 ms of the first invocation per client (docs/performance.md).
    return boto3.session.Session()


@cache
def client(service: str):
    with _creating:
        return _session().client(service, config=CLIENT_CONFIG)


@cache
def secrets() -> "SecretsProvider":
    """Powertools' cached secret reads, through the same client seam and timeouts."""
    # Imported here: only the webhook and the reconciler read secrets, not the stream consumer.
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto3_client=client("secretsmanager"))


def reset_clients() -> None:
    """Forget the session, cached clients and cached secrets (tests switch between mocked AWS environments)."""
    _session.cache_clear()
    client.cache_clear()
    secrets.cache_clear()
