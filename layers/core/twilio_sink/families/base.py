"""What every family declares; the registry needs nothing else to route its events."""

from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import timedelta

from pydantic import BaseModel

from ..envelope import CloudEvent


class Family[Data: BaseModel](ABC):
    entity: str
    statuses: Mapping[str, str]  # event type -> status it sets
    data_model: type[Data]
    # Reconciliation against Twilio's REST API (reconcile.py): the statuses after which Twilio changes
    # nothing more, and how long any other status may stay unchanged before Twilio is asked for the
    # truth. None: Twilio has no REST resource to ask, the family is not reconciled.
    final: frozenset[str] = frozenset()
    stale_after: timedelta | None = None

    @abstractmethod
    def entity_id(self, data: Data) -> str: ...

    def indexed(self, data: Data) -> dict[str, str]:
        """Attributes the state item carries for the table's secondary indexes (none by default).

        Only non-empty values: DynamoDB rejects empty key attributes, and an absent one keeps the
        item out of the (sparse) index.
        """
        return {}

    def recheck_after(self, status: str) -> timedelta | None:
        """How long `status` may stay unchanged before reconciliation asks Twilio (None: never)."""
        return None if status in self.final else self.stale_after

    @abstractmethod
    def order_key(self, event: CloudEvent, data: Data, status: str) -> str:
        """Text that sorts in precedence order; must end with the event id for a total order."""
