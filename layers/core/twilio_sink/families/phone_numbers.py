"""`…number-registration.*` and `…number-deregistration.*`: A2P phone numbers."""

from pydantic import Field

from .a2p import PREFIX, A2PData, LatestWins


class PhoneNumberData(A2PData):
    phonenumbersid: str = Field(min_length=1)
    phonenumber: str | None = None
    campaignsid: str | None = None
    externalstatus: str | None = None
    failureReason: str | None = None  # camelCase in Twilio's payloads
    id: str | None = None


class PhoneNumbers(LatestWins[PhoneNumberData]):
    entity = "phone_number"
    statuses = {
        PREFIX + "number-registration.pending": "registration_pending",
        PREFIX + "number-registration.successful": "registered",
        PREFIX + "number-registration.failed": "registration_failed",
        PREFIX + "number-deregistration.pending": "deregistration_pending",
        PREFIX + "number-deregistration.successful": "deregistered",
        PREFIX + "number-deregistration.failed": "deregistration_failed",
    }
    data_model = PhoneNumberData

    def entity_id(self, data: PhoneNumberData) -> str:
        return data.phonenumbersid
