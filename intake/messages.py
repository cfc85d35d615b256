"""The value types that cross package lines. A leaf: imports nothing of ours."""

from enum import StrEnum


class ChannelKind(StrEnum):
    """Where a request came in; also the channel its acknowledgement goes back on."""

    EMAIL = "email"
    WHATSAPP = "whatsapp"
    SMS = "sms"
    TELEGRAM = "telegram"
    VOICE = "voice"
    WEB = "web"
