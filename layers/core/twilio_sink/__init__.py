"""Shared core of the Twilio Event Streams sink: decode, validate, route, apply, notify, dead-letter.

Both Lambda functions (Kinesis consumer and webhook) are thin entry points over this package.
"""
