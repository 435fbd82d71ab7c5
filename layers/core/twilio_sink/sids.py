"""Twilio's ids (SIDs): Account SIDs as events name them and as the template lists them, message SIDs as
Twilio's REST API knows them. Imports nothing of the core."""

import re

# Twilio's Account SIDs: "AC" and 32 lowercase hex digits.
ACCOUNT_SID = re.compile(r"AC[0-9a-f]{32}")
# Every `/Accounts/<segment>` of a source names an account: a segment that is no Account SID names one
# this stack cannot accept.
SOURCE_ACCOUNT = re.compile(r"/Accounts/([^/]*)")
# A Programmable Messaging message: SM (SMS) or MM (MMS) and 32 hex digits.
MESSAGE_SID = re.compile(r"(SM|MM)[0-9a-fA-F]{32}")
# What an account field holding anything but an Account SID names: no account, so it vouches for nothing.
NOT_AN_ACCOUNT_SID = "(not an account SID)"


def parse_account_sids(text: str) -> tuple[str, ...]:
    """The comma-separated SIDs of the template's TwilioAccountSids parameter, in order (the first is the
    main account: its token is the secret's `auth_token`); anything else fails."""
    sids = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    wrong = [sid for sid in sids if not ACCOUNT_SID.fullmatch(sid)]
    if wrong:
        raise ValueError(f"{len(wrong)} value(s) are not account SIDs (AC followed by 32 lowercase hex digits)")
    return sids
