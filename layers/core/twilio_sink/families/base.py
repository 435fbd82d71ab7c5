"""What every family declares; the registry needs nothing else to route its events."""

from abc import ABC, abstractmethod
from collections.abc import Mapping

from pydantic import BaseModel

from ..envelope import CloudEvent


class Family[Data: BaseModel](ABC):
    entity: str
    statuses: Mapping[str, str]  # event type -> status it sets
    data_model: type[Data]

    @abstractmethod
    def entity_id(self, data: Data) -> str: ...

    def indexed(self, data: Data) -> dict[str, str]:
        """Attributes the state item carries for the table's secondary indexes (none by default).

        Only non-empty values: DynamoDB rejects empty key attributes, and an absent one keeps the
        item out of the (sparse) index.
        """
        return {}

    @abstractmethod
    def order_key(self, event: CloudEvent, data: Data, status: str) -> str:
        """Text that sorts in precedence order; must end with the event id for a total order."""
