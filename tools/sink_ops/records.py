"""A record read from a Kinesis stream (GetRecords) in the shape Lambda hands it to the consumer.

One builder for everything that plays Lambda's event source mapping: the local stack's poller,
`redrive`, and the reliability tests.
"""

import base64


def lambda_record(record: dict, stream_arn: str, shard_id: str, **context: str) -> dict:
    """`context`: further fields Lambda sets (`awsRegion`, `invokeIdentityArn`) where the caller knows them."""
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record["PartitionKey"],
            "sequenceNumber": record["SequenceNumber"],
            "data": base64.b64encode(record["Data"]).decode("ascii"),
            "approximateArrivalTimestamp": round(record["ApproximateArrivalTimestamp"].timestamp(), 3),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{record['SequenceNumber']}",
        "eventName": "aws:kinesis:record",
        "eventSourceARN": stream_arn,
        **context,
    }
