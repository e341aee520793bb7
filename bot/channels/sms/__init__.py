"""SMS for feature phones through Twilio: GSM-7, numbered menus, paging, STOP."""

from bot.channels.sms.channel import SmsChannel
from bot.channels.sms.gsm7 import SegmentInfo, is_gsm7, segment_info, to_gsm7
from bot.channels.sms.interpret import OPT_IN_KEYWORDS, OPT_OUT_KEYWORDS
from bot.channels.sms.render import MAX_SEGMENTS, more_key, sms_body
from bot.channels.sms.twilio_client import TwilioSender
from bot.channels.sms.webhooks import (
    MalformedRequestError,
    StatusUpdate,
    parse_inbound,
    parse_status,
    verify_signature,
)

__all__ = [
    "MAX_SEGMENTS",
    "OPT_IN_KEYWORDS",
    "OPT_OUT_KEYWORDS",
    "MalformedRequestError",
    "SegmentInfo",
    "SmsChannel",
    "StatusUpdate",
    "TwilioSender",
    "is_gsm7",
    "more_key",
    "parse_inbound",
    "parse_status",
    "segment_info",
    "sms_body",
    "to_gsm7",
    "verify_signature",
]
