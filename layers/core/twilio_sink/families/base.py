"""What every family declares; the registry needs nothing else to route its events."""

from abc import ABC, abstractmethod
from collections.abc import Mapping

from pydantic import BaseModel

from ..envelope import CloudEvent


class Family(ABC):
    entity: str
    statuses: Mapping[str, str]  # event type -> status it sets
    data_model: type[BaseModel]

    @abstractmethod
    def entity_id(self, data: BaseModel) -> str: ...

    @abstractmethod
    def order_key(self, event: CloudEvent, data: BaseModel, status: str) -> str:
        """Text that sorts in precedence order; must end with the event id for a total order."""
