"""Where a stack's resources are: a deployed stack's CloudFormation outputs, or the local stack's file.

Every operations command finds its table, topic, queues and stream here, so a deployed stack and the
local one (`twilio-sink serve`) are addressed the same way.
"""

import json
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

# Written by `twilio-sink serve` in the checkout it runs from; commands read it from the working folder.
LOCAL_STACK_FILE = Path(".serve") / "stack.json"


class StackNotFound(LookupError):
    """The stack (deployed or local) cannot be read."""


def outputs(stack: str, region: str | None = None) -> dict[str, str]:
    """A deployed stack's outputs, OutputKey -> OutputValue."""
    try:
        stacks = boto3.client("cloudformation", region_name=region).describe_stacks(StackName=stack)["Stacks"]
    except (BotoCoreError, ClientError) as error:
        raise StackNotFound(f"cannot read stack {stack!r}: {error}") from None
    return {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}


def local(path: Path = LOCAL_STACK_FILE) -> dict:
    """The running local stack's endpoints and resource names."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StackNotFound(f"no local stack ({path} is missing): start one with `twilio-sink serve`") from None
