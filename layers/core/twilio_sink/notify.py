"""Publishing notifications to the SNS topic (contract 3), in order, ten per request."""

from .lifecycle import Notification
from .store import chunks

PUBLISH_BATCH_LIMIT = 10


class Notifier:
    def __init__(self, topic_arn: str, client):
        self.topic_arn = topic_arn
        self.client = client

    def publish(self, notifications: list[Notification]) -> list[str]:
        """Publish in the given order; returns the keys of those published.

        Stops at the first entry SNS refuses so that what is left is published later in order.
        """
        published: list[str] = []
        for group in chunks(notifications, PUBLISH_BATCH_LIMIT):
            response = self.client.publish_batch(
                TopicArn=self.topic_arn,
                PublishBatchRequestEntries=[
                    {
                        "Id": str(index),
                        "Message": notification.body,
                        "MessageAttributes": {
                            name: {"DataType": "String", "StringValue": value}
                            for name, value in notification.attributes.items()
                        },
                    }
                    for index, notification in enumerate(group)
                ],
            )
            succeeded = {int(entry["Id"]) for entry in response.get("Successful", [])}
            for index, notification in enumerate(group):
                if index not in succeeded:
                    return published
                published.append(notification.key)
        return published
