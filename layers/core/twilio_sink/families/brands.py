"""`…brand-registration.*`: A2P brand registration."""

from datetime import timedelta

from pydantic import Field

from .a2p import PREFIX, A2PData, LatestWins

TYPES = PREFIX + "brand-registration."


class BrandData(A2PData):
    brandsid: str = Field(min_length=1)
    brandstatus: str | None = None
    identitystatus: str | None = None
    externalbrandid: str | None = None


class Brands(LatestWins[BrandData]):
    entity = "brand"
    statuses = {
        TYPES + "brand-unverified": "unverified",
        TYPES + "brand-registered": "registered",
        TYPES + "brand-failure": "failed",
    }
    data_model = BrandData
    # Vetting takes hours to days; a registration unchanged this long is worth asking Twilio about.
    final = frozenset({"registered", "failed"})
    stale_after = timedelta(hours=6)

    def entity_id(self, data: BrandData) -> str:
        return data.brandsid
