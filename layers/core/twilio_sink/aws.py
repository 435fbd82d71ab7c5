"""boto3 clients, created once per container behind one seam that tests can reset."""

from functools import cache

import boto3
from aws_lambda_powertools.utilities import parameters
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

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


@cache
def client(service: str):
    return boto3.session.Session().client(service, config=CLIENT_CONFIG)


@cache
def secrets() -> parameters.SecretsProvider:
    """Powertools' cached secret reads, through the same client seam and timeouts."""
    return parameters.SecretsProvider(boto3_client=client("secretsmanager"))


def reset_clients() -> None:
    """Forget cached clients and cached secrets (tests switch between mocked AWS environments)."""
    client.cache_clear()
    secrets.cache_clear()
