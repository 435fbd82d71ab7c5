"""Seed 003's twelve sample deliveries (the A2P guide), as printed, and the only repairs they get.

Each text is the sample exactly as the guide prints it, without its line numbers: its `dataschema`
host and name, its `source` (`CA000…`, no account path), its `datacontenttype` (`application/ison`
once) and its shared event id are kept. `repaired` changes only what makes a sample no CloudEvent
(the type written `com. twilio.messaging compliance…`, the time `2023-06-15713:51:04.528Z`, trailing
commas) and puts valid SIDs where the guide prints placeholders (`ACXXXXXXXXX`, `BNXXXXXXXXX`, …).
"""

import json
import re

BRAND_UNVERIFIED = """[
{
"data": {
"accountsid": "ACXXXXXXXXX",
"brandsid": "BNXXXXXXXXX",
"brandstatus": "registered",
"createddate": 1686837061258,
"externalbrandid": "XXXXXXX",
"identitystatus": "unverified",
"updateddate": 1686837061258
},
"datacontenttype": "application/json",
"dataschema": "https://events-schemas.dev.twilio.com/A2P.BrandRegisteredUnverified/1",
"id": "CE000000000000000000000000000000",
"source": "CA000000000000000000000000000000",
"specversion": "1.0",
"time": "2023-06-15713:51:04.528Z",
"type": "com. twilio.messaging compliance.brand-registration.brand-unverified"
}
]"""

BRAND_REGISTERED = """[
{
"data": {
"accountsid": "ACXXXXXXXXX",
"brandsid": "BNXXXXXXXXX",
"brandstatus": "registered",
"createddate": 1686837061258,
"externalbrandid": "XXXXXXX",
"identitystatus": "verified",
"updateddate": 1686837061258,
},
"datacontenttype": "application/ison",
"dataschema": "https://events-schemas.dev.twilio.com/A2P.BrandRegisteredUnverified/1",
"id": "CE000000000000000000000000000000",
"source": "CA000000000000000000000000000000",
"specversion": "1.0",
"time": "2023-06-15713:51:04.528Z",
"type": "com. twilio.messaging compliance.brand-registration.brand-registered"
}
]"""

BRAND_FAILURE = """[
{
"data": {
"accountsid": "ACXXXXXXXXX",
"brandsid": "BNXXXXXXXXX",
"brandstatus": "registration_failed",
"createddate": 1687789009019,
"updateddate": 1687789009019
},
"datacontenttype": "application/json",
"dataschema": "https://events-schemas.stage.twilio.com/A2P.BrandRegistrationFailure/1",
"id": "CE000000000000000000000000000000",
"source": "CA000000000000000000000000000000",
"specversion": "1.0",
"time": "2023-06-26T14:16:50.481Z",
"type": "com.twilio.messaging.compliance.brand-registration.brand-failure"
}
]"""

CAMPAIGN_SUBMITTED = """[
{
"data": {
"a2pusecase": "MIXED",
"accountsid": "ACXXXXXXXXX",
"brandsid": "BNXXXXXXXXX",
"campaignregistrationstatus": "pending",
"campaignsid": "CMXXXXXXXXX",
"createddate": 1687892791272,
"messagingservicesid": "MGXXXXXXXXX",
"timestamp": 1687892792294,
"updateddate": 1687892791272
},
"datacontenttype": "application/json",
"dataschema": "https://events-schemas.stage.twilio.com/A2P.CampaignRegistrationSubmitted/1",
"id": "CE000000000000000000000000000000",
"source": "CA000000000000000000000000000000",
"specversion": "1.0",
"time": "2023-06-27T19:06:32.294Z",
"type": "com.twilio.messaging.compliance.campaign-registration.campaign-submitted"
}
]"""

CAMPAIGN_APPROVED = """[
{
"data": {
"a2pusecase": "MIXED",
"accountsid": "ACXXXXXXXXX",
"brandsid": "BNXXXXXXXXX",
"campaignregistrationstatus": "success",
"campaignsid": "CMXXXXXXXXX",
"createddate": 1687892791272,
"externalcampaignid": "XXXXXXX",
"messagingservicesid": "MGXXXXXXXXX",
"timestamp": 1687892792294,
"updateddate": 1687892791272,
},
"datacontenttype": "application/json",
"dataschema": "https://events-schemas.stage.twilio.com/A2P.CampaignRegistrationApproved/1",
"id": "CE000000000000000000000000000000",
"source": "CA000000000000000000000000000000",
"specversion": "1.0",
"time": "2023-06-27T19:06:32.294Z",
"type": "com.twilio.messaging.compliance.campaign-registration.campaign-approved"
}
]"""

CAMPAIGN_FAILURE = """[
{
"data": {
"a2pusecase": "MIXED",
"accountsid": "ACXXXXXXXXX",
"brandsid": "BNXXXXXXXXX",
"campaignregistrationstatus": "failure",
"campaignsid": "CMXXXXXXXXX",
"createddate": 1687892791272,
"messagingservicesid": "MGXXXXXXXXX",
"timestamp": 1687892792294,
"updateddate": 1687892791272
},
"datacontenttype": "application/json",
"dataschema": "https://events-schemas.stage.twilio.com/A2P.CampaignRegistrationFailure/1",
"id": "CE000000000000000000000000000000",
"source": "CA000000000000000000000000000000",
"specversion": "1.0",
"time": "2023-06-27T19:06:32.294Z",
"type": "com.twilio.messaging.compliance.campaign-registration.campaign-failure"
}
]"""


def _number(event_type: str, schema: str, status: str, campaign: bool = True, failure: bool = False) -> str:
    """The six number samples share one printed shape; only these lines differ between them."""
    lines = [
        "[", "{", '"specversion": "1.0",', f'"type": "com.twilio.messaging.compliance.{event_type}",',
        '"source": "CA000000000000000000000000000000",', '"id": "CE000000000000000000000000000000",',
        f'"dataschema": "https://events-schemas.twilio.com/{schema}/1",', '"datacontenttype": "application/json",',
        '"time": "2024-03-13T15:51:10.552Z",', '"data": {', '"accountsid": "ACXXXXXXXXXXXXXXXXXXXXXXXX",',
        '"timestamp": 1710345070552,', '"id": "fd902aed-ca5a-8e26-85ee-35bdbf3503ea",',
        *(['"campaignsid": "CMXXXXXXXXXXXXXXXX",'] if campaign else []), f'"externalstatus": "{status}",',
        *(['"failureReason": "https://www.twilio.com/docs/api/errors/30126",'] if failure else []),
        '"phonenumbersid": "PNXXXXXXXXXXXXXXXX",', '"updateddate": 1710345070476,', '"phonenumber": "1234567890"',
        "}", "}", "]",
    ]
    return "\n".join(lines)


SAMPLES = {
    "brand-unverified": BRAND_UNVERIFIED,
    "brand-registered": BRAND_REGISTERED,
    "brand-failure": BRAND_FAILURE,
    "campaign-submitted": CAMPAIGN_SUBMITTED,
    "campaign-approved": CAMPAIGN_APPROVED,
    "campaign-failure": CAMPAIGN_FAILURE,
    "number-deregistration.failed": _number("number-deregistration.failed", "A2P.NumberDeregistrationFailed",
                                            "failure", failure=True),
    "number-deregistration.pending": _number("number-deregistration.pending", "A2P.NumberDeregistrationPending",
                                             "pending_deregistration"),
    "number-deregistration.successful": _number("number-deregistration.successful",
                                                "A2P.NumberDeregistrationSuccessful", "unregistered", campaign=False),
    "number-registration.failed": _number("number-registration.failed", "A2P.NumberRegistrationFailed",
                                          "failure", failure=True),
    "number-registration.pending": _number("number-registration.pending", "A2P.NumberRegistrationPending",
                                           "pending_registration"),
    "number-registration.successful": _number("number-registration.successful", "A2P.NumberRegistrationSuccessful",
                                              "registered"),
}

# Placeholder prefix -> a valid SID of that kind (hex digits; the account is one the stack accepts).
PLACEHOLDER = re.compile(r'"(AC|BN|CM|MG|PN)X+"')


def repaired(text: str, account_sid: str) -> list[dict]:
    """The sample as a JSON array of CloudEvents: only the printing defects and the placeholders fixed."""
    text = text.replace("com. twilio.messaging compliance.", "com.twilio.messaging.compliance.")
    text = text.replace("2023-06-15713:", "2023-06-15T13:")
    text = re.sub(r",(\s*})", r"\1", text)
    sids = {"AC": account_sid, "BN": "BN" + "1" * 32, "CM": "CM" + "2" * 32, "MG": "MG" + "3" * 32,
            "PN": "PN" + "4" * 32}
    text = PLACEHOLDER.sub(lambda match: f'"{sids[match[1]]}"', text)
    return json.loads(text)
