"""`…campaign-registration.*`: A2P campaign registration, deletion included."""

from datetime import timedelta
from typing import Annotated

from ..envelope import CloudEvent, Identifier
from .a2p import A2P_NAMESPACE, PREFIX, A2PData, LatestWins
from .base import Places, event_types

TYPES = PREFIX + "campaign-registration."


class CampaignData(A2PData):
    campaignsid: Annotated[Identifier, Places("the campaign (CM…): the entity id")]


class Campaigns(LatestWins[CampaignData]):
    name = "campaigns"
    entity = "campaign"
    id_source = "data.campaignsid"
    types = {
        **event_types(TYPES, {"campaign-submitted": "submitted"}, "A2P.CampaignRegistrationSubmitted", [1, 2]),
        **event_types(TYPES, {"campaign-approved": "approved"}, "A2P.CampaignRegistrationApproved", [1, 2]),
        **event_types(TYPES, {"campaign-failure": "failed"}, "A2P.CampaignRegistrationFailure", [1, 2]),
        **event_types(TYPES, {"campaign-deleted": "deleted"}, A2P_NAMESPACE, [1]),
        **event_types(TYPES, {"suspended-campaign-delete-submitted": "deletion_submitted"},
                      "A2P.SuspendedCampaignRegistrationDeleteSubmitted", [1]),
    }
    data_model = CampaignData
    # Vetting takes hours to days; a registration unchanged this long is worth asking Twilio about.
    final = frozenset({"approved", "failed", "deleted"})
    quiet_after = timedelta(hours=6)
    # A suspended campaign shows as the deletion Twilio submits for it.
    setbacks = frozenset({"failed", "deletion_submitted"})

    def entity_id(self, event: CloudEvent, data: CampaignData) -> str:
        return data.campaignsid
