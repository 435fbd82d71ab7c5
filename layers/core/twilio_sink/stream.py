"""The Kinesis side: Powertools' partial-batch reporting around one whole-batch pipeline run.

Powertools' `BatchProcessor` calls a handler per record; collapsing a batch per entity needs the
whole batch at once, so this processor hands all records to one handler and reports the failures
it returns through Powertools' own success/failure bookkeeping and response format.
"""

from aws_lambda_powertools.utilities.batch import BasePartialBatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from .accounts import AccountRule
from .config import settings
from .pipeline import default_pipeline
from .received import from_kinesis


class RetryLater(Exception):
    """A record whose processing hit a transient AWS failure; Lambda delivers it again."""


class WholeBatchProcessor(BasePartialBatchProcessor):
    def __init__(self):
        # Every failure here is transient (poison records are dead-lettered, not failed): report
        # them all rather than raise, so Lambda retries the batch as it is instead of counting a
        # function error and bisecting a batch that has nothing wrong with it.
        super().__init__(EventType.KinesisDataStreams, raise_on_entire_batch_failure=False)

    def process(self) -> list[tuple]:
        records = [KinesisStreamRecord(record) for record in self.records]
        context = getattr(self, "lambda_context", None)
        remaining = context.get_remaining_time_in_millis() / 1000 if context else None
        failed = self.handler(records, remaining)
        results = []
        for index, record in enumerate(records):
            if index in failed:
                error = RetryLater(f"sequence number {record.kinesis.sequence_number}")
                results.append(self.failure_handler(record, (RetryLater, error, None)))
            else:
                results.append(self.success_handler(record, None))
        return results

    def _process_record(self, record: dict):
        raise NotImplementedError("records are processed as a whole batch")

    async def _async_process_record(self, record: dict):
        raise NotImplementedError("records are processed as a whole batch")


def consume(records: list[KinesisStreamRecord], remaining_seconds: float | None = None) -> set[int]:
    """Process a batch; returns the indexes of records to retry. `remaining_seconds`: to Lambda's timeout."""
    config = settings()
    accounts = AccountRule.stream(config.twilio_account_sids, config.stream_events_without_account)
    return default_pipeline().process([from_kinesis(record, accounts) for record in records], remaining_seconds).failed
