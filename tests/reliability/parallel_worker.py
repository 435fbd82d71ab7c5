"""One function container in its own process, driven the way Lambda or Twilio drives it.

    python -m tests.reliability.parallel_worker <spec.json> <result.json>

The spec names the function (`stream_consumer` or `webhook`), the instant to start at (epoch seconds,
shared by every worker) and its jobs: Kinesis batches or webhook bodies. The function's environment
(its template variables resolved against a moto server, and AWS_ENDPOINT_URL) comes from the parent.
- stream_consumer: after reported failures Lambda retries the batch from the lowest failed record.
- webhook: every attempt is a new API Gateway request (its own request id); after a 5xx or 429
  Twilio retries later. With `first_deadline`, first attempts answer 503 once that many seconds
  passed before their publish (what they wrote is released for the retry).
"""

import json
import os
import random
import sys
import time
import uuid
from pathlib import Path

MAX_ATTEMPTS = 60


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    from sink_dev.samples import kinesis_event, webhook_body, webhook_event
    from sink_local.stack import load_function

    function = load_function(spec["function"])
    timeout = spec["timeout_seconds"]
    jitter = random.Random(spec["seed"])
    answers: list[list[int]] = []
    time.sleep(max(0.0, spec["start_at"] - time.time()))
    started = time.time()
    for job in spec["jobs"]:
        if spec["function"] == "stream_consumer":
            records = kinesis_event(job["events"], job["first_sequence"])["Records"]
            answers.append(consume(function, records, timeout))
        else:
            answers.append(post(function, webhook_body(job["events"]), timeout, spec.get("first_deadline"), jitter,
                                webhook_event))
    result = {"started": started, "ended": time.time(), "answers": answers}
    Path(sys.argv[2]).write_text(json.dumps(result))


def consume(function, records: list[dict], timeout: float) -> list[int]:
    """Lambda's rule with ReportBatchItemFailures: retry from the lowest failed record; answers = failures per attempt."""
    from sink_local.stack import LambdaContext

    failures: list[int] = []
    while records and len(failures) < MAX_ATTEMPTS:
        response = function.lambda_handler({"Records": records}, LambdaContext(deadline=time.monotonic() + timeout))
        failed = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
        failures.append(len(failed))
        sequences = [record["kinesis"]["sequenceNumber"] for record in records]
        records = records[min(sequences.index(s) for s in failed):] if failed else []
    return failures


def post(function, body: str, timeout: float, first_deadline: float | None, jitter: random.Random,
         webhook_event) -> list[int]:
    """Twilio's rule: the whole body again after a 5xx or 429, later; answers = status per attempt."""
    from sink_local.stack import LambdaContext
    from twilio_sink import config

    statuses: list[int] = []
    while len(statuses) < MAX_ATTEMPTS:
        deadline = first_deadline if first_deadline and not statuses else None
        if deadline:
            os.environ["WEBHOOK_DEADLINE_SECONDS"] = str(deadline)
        else:
            os.environ.pop("WEBHOOK_DEADLINE_SECONDS", None)
        config.settings.cache_clear()
        event = webhook_event(body)
        event["requestContext"]["requestId"] = str(uuid.uuid4())  # API Gateway: one id per request
        response = function.lambda_handler(event, LambdaContext(deadline=time.monotonic() + timeout))
        statuses.append(response["statusCode"])
        if response["statusCode"] < 500 and response["statusCode"] != 429:
            break
        time.sleep(jitter.uniform(0.05, 0.25))  # Twilio's backoff, shortened
    return statuses


if __name__ == "__main__":
    main()
