"""SDP (RFC 4566) and offer/answer (RFC 3264) for audio sessions; pure, no IO."""

from telportal.sdp.description import (
    Attribute,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    RtcpAddress,
    RtpMap,
    SdpError,
    SessionDescription,
)
from telportal.sdp.negotiation import (
    PCMA,
    PCMU,
    Answer,
    Codec,
    LocalMedia,
    NegotiatedAudio,
    accept_answer,
    answer_offer,
    create_offer,
    is_hold,
)

__all__ = [
    "PCMA",
    "PCMU",
    "Answer",
    "Attribute",
    "Codec",
    "Connection",
    "Direction",
    "LocalMedia",
    "MediaDescription",
    "NegotiatedAudio",
    "Origin",
    "RtcpAddress",
    "RtpMap",
    "SdpError",
    "SessionDescription",
    "accept_answer",
    "answer_offer",
    "create_offer",
    "is_hold",
]
