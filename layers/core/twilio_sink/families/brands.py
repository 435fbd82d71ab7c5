"""`…brand-registration.*`: A2P brand registration (the seeds' three types and the vetting outcomes).

The brand's other notices (`sharing-*`, `invalid-contact-email`, `email-2fa-*`) report on a brand
without moving its registration: they are kept as entity `event` by the registry's catch-all.
"""

from datetime import timedelta
from typing import Annotated

from ..envelope import CloudEvent, Identifier
from .a2p import A2P_NAMESPACE, PREFIX, A2PData, LatestWins
from .base import Places, event_types

TYPES = PREFIX + "brand-registration."


class BrandData(A2PData):
    brandsid: Annotated[Identifier, Places("the brand registration (BN…): the entity id")]


class Brands(LatestWins[BrandData]):
    name = "brands"
    entity = "brand"
    id_source = "data.brandsid"
    types = {
        # The seed's name; Twilio's A2P event guide says `A2P.BrandRegistrationUnverified`.
        **event_types(TYPES, {"brand-unverified": "unverified"}, "A2P.BrandRegisteredUnverified", [1, 2],
                      aliases=["A2P.BrandRegistrationUnverified"]),
        **event_types(TYPES, {"brand-registered": "registered"}, "A2P.BrandRegistered", [1, 2]),
        **event_types(TYPES, {"brand-failure": "failed"}, "A2P.BrandRegistrationFailure", [1, 2, 3]),
        **event_types(TYPES, {"brand-verified": "verified", "brand-vetted-verified": "vetted_verified",
                              "brand-secondary-vetting-failure": "secondary_vetting_failed"}, A2P_NAMESPACE, [1]),
    }
    data_model = BrandData
    # Vetting takes hours to days; a registration unchanged this long is worth asking Twilio about.
    final = frozenset({"registered", "failed"})
    quiet_after = timedelta(hours=6)
    setbacks = frozenset({"failed", "secondary_vetting_failed"})

    def entity_id(self, event: CloudEvent, data: BrandData) -> str:
        return data.brandsid
