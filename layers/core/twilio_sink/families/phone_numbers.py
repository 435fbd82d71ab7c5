"""`…number-registration.*` and `…number-deregistration.*`: A2P phone numbers."""

from typing import Annotated

from ..envelope import CloudEvent, Identifier
from .a2p import PREFIX, A2PData, LatestWins
from .base import Places, event_types

STATUSES = {
    "number-registration.pending": ("registration_pending", "A2P.NumberRegistrationPending"),
    "number-registration.successful": ("registered", "A2P.NumberRegistrationSuccessful"),
    "number-registration.failed": ("registration_failed", "A2P.NumberRegistrationFailed"),
    "number-deregistration.pending": ("deregistration_pending", "A2P.NumberDeregistrationPending"),
    "number-deregistration.successful": ("deregistered", "A2P.NumberDeregistrationSuccessful"),
    "number-deregistration.failed": ("deregistration_failed", "A2P.NumberDeregistrationFailed"),
}


class PhoneNumberData(A2PData):
    phonenumbersid: Annotated[Identifier, Places("the phone number (PN…): the entity id")]


class PhoneNumbers(LatestWins[PhoneNumberData]):
    name = "phone-numbers"
    entity = "phone_number"
    id_source = "data.phonenumbersid"
    types = event_types(PREFIX, {suffix: status for suffix, (status, _) in STATUSES.items()},
                        {suffix: schema for suffix, (_, schema) in STATUSES.items()}, [1])
    data_model = PhoneNumberData

    def entity_id(self, event: CloudEvent, data: PhoneNumberData) -> str:
        return data.phonenumbersid
