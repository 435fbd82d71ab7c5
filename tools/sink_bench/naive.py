"""The baseline: a consumer the way samples write one — per record, one write and one publish, in sequence.

It decodes and validates with the same core functions, so the comparison measures the I/O pattern,
not the parsing. No conditions, no outbox, no history: it is faster per request than the real
pipeline could ever be, which keeps the ratio honest.
"""

import base64
import json

import boto3

from twilio_sink.aws import CLIENT_CONFIG
from twilio_sink.envelope import cloudevent_from_record
from twilio_sink.notify import notification
from twilio_sink.registry import route
from twilio_sink.store import to_item


class NaiveConsumer:
    def __init__(self, table_name: str, topic_arn: str):
        self.table_name = table_name
        self.topic_arn = topic_arn
        self.dynamodb = boto3.client("dynamodb", config=CLIENT_CONFIG)
        self.sns = boto3.client("sns", config=CLIENT_CONFIG)

    def lambda_handler(self, event: dict, context) -> dict:
        for record in event["Records"]:
            change = route(cloudevent_from_record(base64.b64decode(record["kinesis"]["data"])))
            cloudevent = change.event
            self.dynamodb.put_item(TableName=self.table_name, Item=to_item({
                "pk": change.pk, "sk": "state", "entity": change.entity, "id": change.entity_id,
                "status": change.status, "event_type": cloudevent.type, "event_id": cloudevent.id,
                "event_time": cloudevent.time_utc, "data": json.dumps(cloudevent.data),
            }))
            note = notification(change, None)
            self.sns.publish(TopicArn=self.topic_arn, Message=note.body, MessageAttributes={
                name: {"DataType": "String", "StringValue": value} for name, value in note.attributes.items()})
        return {"batchItemFailures": []}
