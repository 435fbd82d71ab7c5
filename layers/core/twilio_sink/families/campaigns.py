"""`…campaign-registration.*`: A2P campaign registration."""

from datetime import timedelta

from pydantic import Field

from .a2p import PREFIX, A2PData, LatestWins

TYPES = PREFIX + "campaign-registration."


class CampaignData(A2PData):
    campaignsid: str = Field(min_length=1)
    brandsid: str | None = None
    a2pusecase: str | None = None
    campaignregistrationstatus: str | None = None
    messagingservicesid: str | None = None
    externalcampaignid: str | None = None


class Campaigns(LatestWins[CampaignData]):
    entity = "campaign"
    statuses = {
        TYPES + "campaign-submitted": "submitted",
        TYPES + "campaign-approved": "approved",
        TYPES + "campaign-failure": "failed",
    }
    data_model = CampaignData
    # Vetting takes hours to days; a registration unchanged this long is worth asking Twilio about.
    final = frozenset({"approved", "failed"})
    stale_after = timedelta(hours=6)

    def entity_id(self, data: CampaignData) -> str:
        return data.campaignsid
