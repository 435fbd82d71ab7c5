"""`twilio-sink external-id`: a fresh value for the template's TwilioExternalId parameter.

The external id is the only secret between the stream-writer role and anyone who learns its ARN, so
it is random (256 bits, URL-safe) and checked here against the template's own AllowedPattern, the
deploy-time check it must pass. Give the same value to `sam deploy` and to `twilio-sink connect`.
"""

import argparse
import re
import secrets
import sys

# The AllowedPattern of TwilioExternalId in template.yaml (a test keeps the two equal).
ALLOWED_PATTERN = r"^(?=.*[0-9])(?=.*[A-Za-z])(?!.*(.)\1{7})[\w+=,.@:/-]{32,1224}$"


def generate() -> str:
    while True:  # a draw without a digit or a letter (about 1 in 10^20) is drawn again
        value = secrets.token_urlsafe(32)
        if re.fullmatch(ALLOWED_PATTERN, value):
            return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="twilio-sink external-id", description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    print(generate())
    return 0


if __name__ == "__main__":
    sys.exit(main())
