"""Offer/answer for one audio stream (RFC 3264), with G.711 and RFC 4733 telephone-events.

Answer rules:
- the answer has exactly the offer's m= lines, in order (RFC 3264 6); every stream but
  one is rejected with port 0 and the offered formats;
- the accepted stream is the first RTP/AVP audio stream, with a non-zero port, that
  offers one of our codecs; the codec is the first in the offerer's order that we
  support (6.1: the offerer lists its preference), under the offerer's payload type;
- telephone-event is kept when offered at the codec's clock rate, under the offerer's
  payload type, with events 0-15 (the DTMF digits);
- direction is the offer's seen from our side, limited by what we want: sendonly is
  answered recvonly, recvonly sendonly, inactive inactive. An offer whose connection is
  0.0.0.0 (the RFC 2543 hold, 3264 8.4) does not want to receive, whatever it says;
- the offerer holds us when it does not want to receive: sendonly, inactive or 0.0.0.0;
- an offer with nothing we can accept raises SdpError (a SIP layer answers 488).
"""

from dataclasses import dataclass

from telportal.sdp.description import (
    Attribute,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    RtpMap,
    SdpError,
    SessionDescription,
    ip_version,
)

RTP_AVP = "RTP/AVP"
AUDIO = "audio"
TELEPHONE_EVENT = "telephone-event"
DTMF_EVENTS = "0-15"
DEFAULT_TELEPHONE_EVENT_PAYLOAD_TYPE = 101
DEFAULT_PTIME = 20


@dataclass(frozen=True, slots=True)
class Codec:
    """An audio codec as SDP names it; `payload_type` is its static number (RFC 3551)."""

    name: str
    clock_rate: int
    payload_type: int

    def __str__(self) -> str:
        return f"{self.name}/{self.clock_rate}"

    def matches(self, rtpmap: RtpMap) -> bool:
        return (
            rtpmap.encoding.lower() == self.name.lower()
            and rtpmap.clock_rate == self.clock_rate
            and rtpmap.channels in (None, 1)
        )


PCMU = Codec("PCMU", 8000, 0)
PCMA = Codec("PCMA", 8000, 8)

# RFC 3551 table 4: what a static payload type means when no rtpmap says otherwise.
_STATIC_PAYLOAD_TYPES = {
    0: RtpMap(0, "PCMU", 8000),
    3: RtpMap(3, "GSM", 8000),
    4: RtpMap(4, "G723", 8000),
    8: RtpMap(8, "PCMA", 8000),
    9: RtpMap(9, "G722", 8000),
    18: RtpMap(18, "G729", 8000),
}


@dataclass(frozen=True, slots=True)
class LocalMedia:
    """What we offer or accept: our RTP address and port, codecs, and wanted direction."""

    address: str
    port: int
    codecs: tuple[Codec, ...] = (PCMU, PCMA)
    telephone_event: bool = True
    telephone_event_payload_type: int = DEFAULT_TELEPHONE_EVENT_PAYLOAD_TYPE
    ptime: int = DEFAULT_PTIME
    direction: Direction = Direction.SENDRECV
    username: str = "telportal"

    # Written out, not generated: see decision 0021 (a compiled dataclass's own __init__
    # runs interpreted). The fields above and the parameters here must agree.
    def __init__(
        self,
        address: str,
        port: int,
        codecs: tuple[Codec, ...] = (PCMU, PCMA),
        telephone_event: bool = True,
        telephone_event_payload_type: int = DEFAULT_TELEPHONE_EVENT_PAYLOAD_TYPE,
        ptime: int = DEFAULT_PTIME,
        direction: Direction = Direction.SENDRECV,
        username: str = "telportal",
    ) -> None:
        object.__setattr__(self, "address", address)
        object.__setattr__(self, "port", port)
        object.__setattr__(self, "codecs", codecs)
        object.__setattr__(self, "telephone_event", telephone_event)
        object.__setattr__(self, "telephone_event_payload_type", telephone_event_payload_type)
        object.__setattr__(self, "ptime", ptime)
        object.__setattr__(self, "direction", direction)
        object.__setattr__(self, "username", username)
        self.__post_init__()

    def __post_init__(self) -> None:
        if ip_version(self.address) is None:
            raise ValueError(f"{self.address!r} is not an IP address")
        if not 0 < self.port <= 0xFFFF:
            raise ValueError(f"port {self.port} is out of range 1-65535")
        if not self.codecs:
            raise ValueError("at least one codec is needed")


@dataclass(frozen=True, slots=True)
class NegotiatedAudio:
    """The audio stream both ends agreed on, seen from our side.

    `direction` is ours; `ptime` is the packet time the remote end asked to receive.
    """

    media_index: int
    codec: Codec
    payload_type: int
    telephone_event_payload_type: int | None
    remote_address: str
    remote_port: int
    remote_rtcp_port: int
    direction: Direction
    remote_hold: bool
    ptime: int

    # Written out, not generated: see decision 0021 (a compiled dataclass's own __init__
    # runs interpreted). The fields above and the parameters here must agree.
    def __init__(
        self,
        media_index: int,
        codec: Codec,
        payload_type: int,
        telephone_event_payload_type: int | None,
        remote_address: str,
        remote_port: int,
        remote_rtcp_port: int,
        direction: Direction,
        remote_hold: bool,
        ptime: int,
    ) -> None:
        object.__setattr__(self, "media_index", media_index)
        object.__setattr__(self, "codec", codec)
        object.__setattr__(self, "payload_type", payload_type)
        object.__setattr__(self, "telephone_event_payload_type", telephone_event_payload_type)
        object.__setattr__(self, "remote_address", remote_address)
        object.__setattr__(self, "remote_port", remote_port)
        object.__setattr__(self, "remote_rtcp_port", remote_rtcp_port)
        object.__setattr__(self, "direction", direction)
        object.__setattr__(self, "remote_hold", remote_hold)
        object.__setattr__(self, "ptime", ptime)


@dataclass(frozen=True, slots=True)
class Answer:
    sdp: SessionDescription
    audio: NegotiatedAudio

    # Written out, not generated: see decision 0021 (a compiled dataclass's own __init__
    # runs interpreted). The fields above and the parameters here must agree.
    def __init__(self, sdp: SessionDescription, audio: NegotiatedAudio) -> None:
        object.__setattr__(self, "sdp", sdp)
        object.__setattr__(self, "audio", audio)


def _rtpmap_for(maps: dict[int, RtpMap], payload_type: int) -> RtpMap | None:
    return maps.get(payload_type) or _STATIC_PAYLOAD_TYPES.get(payload_type)


def _offered_names(media: MediaDescription, maps: dict[int, RtpMap]) -> list[str]:
    names = []
    for payload_type in media.payload_types:
        rtpmap = _rtpmap_for(maps, payload_type)
        names.append(
            f"{rtpmap.encoding}/{rtpmap.clock_rate}" if rtpmap else f"payload type {payload_type}"
        )
    return names


def _choose_codec(
    payload_types: list[int], maps: dict[int, RtpMap], codecs: tuple[Codec, ...]
) -> tuple[Codec, int] | None:
    for payload_type in payload_types:
        rtpmap = _rtpmap_for(maps, payload_type)
        if rtpmap is None or rtpmap.encoding.lower() == TELEPHONE_EVENT:
            continue
        for codec in codecs:
            if codec.matches(rtpmap):
                return codec, payload_type
    return None


def _telephone_event(
    payload_types: list[int], maps: dict[int, RtpMap], clock_rate: int
) -> int | None:
    for payload_type in payload_types:
        rtpmap = maps.get(payload_type)
        if (
            rtpmap is not None
            and rtpmap.encoding.lower() == TELEPHONE_EVENT
            and rtpmap.clock_rate == clock_rate
        ):
            return payload_type
    return None


def is_hold(description: SessionDescription, media: MediaDescription) -> bool:
    """Whether the sender of `description` does not want to receive this stream."""
    connection = description.connection_for(media)
    if connection is not None and connection.is_hold:
        return True
    return not description.direction_for(media).receives


def _wanted_direction(description: SessionDescription, media: MediaDescription) -> Direction:
    direction = description.direction_for(media)
    connection = description.connection_for(media)
    if connection is not None and connection.is_hold:
        return Direction.of(direction.sends, False)
    return direction


def _rejected(media: MediaDescription) -> MediaDescription:
    return MediaDescription(media.media, 0, media.protocol, media.formats)


# What `_audio_media` writes under an m= line, by what it depends on. An answer repeats
# the same few lines call after call; the key's values come from our codecs and the
# offer's payload types (0-127), so there are few of them; still bounded.
_MediaLines = tuple[tuple[str, ...], tuple[Attribute, ...]]
_MEDIA_LINES: dict[
    tuple[tuple[tuple[Codec, int], ...], int | None, int, Direction], _MediaLines
] = {}
_MEDIA_LINES_KEPT = 256


def _audio_media(
    local: LocalMedia,
    codecs: list[tuple[Codec, int]],
    telephone_event: int | None,
    direction: Direction,
) -> MediaDescription:
    key = (tuple(codecs), telephone_event, local.ptime, direction)
    lines = _MEDIA_LINES.get(key)
    if lines is None:
        lines = _media_lines(local.ptime, codecs, telephone_event, direction)
        if len(_MEDIA_LINES) >= _MEDIA_LINES_KEPT:
            _MEDIA_LINES.clear()
        _MEDIA_LINES[key] = lines
    formats, attributes = lines
    return MediaDescription(AUDIO, local.port, RTP_AVP, formats, attributes=attributes)


def _media_lines(
    ptime: int,
    codecs: list[tuple[Codec, int]],
    telephone_event: int | None,
    direction: Direction,
) -> _MediaLines:
    formats = [str(payload_type) for _, payload_type in codecs]
    attributes = [
        Attribute("rtpmap", str(RtpMap(payload_type, codec.name, codec.clock_rate)))
        for codec, payload_type in codecs
    ]
    if telephone_event is not None:
        clock_rate = codecs[0][0].clock_rate
        formats.append(str(telephone_event))
        attributes.append(
            Attribute("rtpmap", str(RtpMap(telephone_event, TELEPHONE_EVENT, clock_rate)))
        )
        attributes.append(Attribute("fmtp", f"{telephone_event} {DTMF_EVENTS}"))
    attributes.append(Attribute("ptime", str(ptime)))
    attributes.append(Attribute(direction.value))
    return tuple(formats), tuple(attributes)


def _session(
    local: LocalMedia, session_id: int, session_version: int, media: tuple[MediaDescription, ...]
) -> SessionDescription:
    connection = Connection.for_address(local.address)
    origin = Origin(
        local.username, str(session_id), session_version, local.address, connection.address_type
    )
    return SessionDescription(origin=origin, connection=connection, media=media)


def create_offer(local: LocalMedia, session_id: int, session_version: int) -> SessionDescription:
    """An offer of one audio stream with all our codecs, in our order of preference."""
    media = _audio_media(
        local,
        [(codec, codec.payload_type) for codec in local.codecs],
        local.telephone_event_payload_type if local.telephone_event else None,
        local.direction,
    )
    return _session(local, session_id, session_version, (media,))


def _remote_endpoint(
    description: SessionDescription, media: MediaDescription, index: int
) -> tuple[str, int]:
    connection = description.connection_for(media)
    if connection is None:
        raise SdpError(f"media line {index + 1} has no connection address")
    rtcp = media.rtcp
    return connection.address.split("/", 1)[0], rtcp.port if rtcp else media.port + 1


def answer_offer(
    offer: SessionDescription, local: LocalMedia, session_id: int, session_version: int
) -> Answer:
    """Our answer to an offer, and the stream it sets up (rules at the top)."""
    answered: list[MediaDescription] = []
    negotiated: NegotiatedAudio | None = None
    candidates = 0
    offered: list[str] = []
    for index, media in enumerate(offer.media):
        usable = negotiated is None and media.media == AUDIO and media.protocol == RTP_AVP
        if not usable or media.port == 0:
            answered.append(_rejected(media))
            continue
        candidates += 1
        # Each reading of these parses the a= lines again: read them once per stream.
        maps, payload_types = media.rtpmaps, media.payload_types
        choice = _choose_codec(payload_types, maps, local.codecs)
        if choice is None:
            offered.extend(_offered_names(media, maps))
            answered.append(_rejected(media))
            continue
        codec, payload_type = choice
        event_pt = (
            _telephone_event(payload_types, maps, codec.clock_rate)
            if local.telephone_event
            else None
        )
        wanted = _wanted_direction(offer, media)
        direction = Direction.of(
            wanted.receives and local.direction.sends, wanted.sends and local.direction.receives
        )
        address, rtcp_port = _remote_endpoint(offer, media, index)
        negotiated = NegotiatedAudio(
            media_index=index,
            codec=codec,
            payload_type=payload_type,
            telephone_event_payload_type=event_pt,
            remote_address=address,
            remote_port=media.port,
            remote_rtcp_port=rtcp_port,
            direction=direction,
            remote_hold=is_hold(offer, media),
            ptime=media.ptime or DEFAULT_PTIME,
        )
        answered.append(_audio_media(local, [(codec, payload_type)], event_pt, direction))
    if negotiated is None:
        if not candidates:
            raise SdpError("offer has no RTP/AVP audio stream")
        supported = ", ".join(str(codec) for codec in local.codecs)
        raise SdpError(
            f"no common audio codec: offered {', '.join(offered) or 'nothing'}; "
            f"supported {supported}"
        )
    return Answer(_session(local, session_id, session_version, tuple(answered)), negotiated)


def accept_answer(
    offer: SessionDescription, answer: SessionDescription, local: LocalMedia
) -> NegotiatedAudio:
    """Check the answer to our offer and read the audio stream it accepted."""
    if len(answer.media) != len(offer.media):
        raise SdpError(
            f"answer has {len(answer.media)} media lines, the offer had {len(offer.media)}"
        )
    for index, (ours, theirs) in enumerate(zip(offer.media, answer.media, strict=True)):
        if theirs.port == 0 or ours.port == 0 or theirs.media != AUDIO:
            continue
        offered_types = set(ours.payload_types)
        maps, payload_types = theirs.rtpmaps, theirs.payload_types
        for payload_type in payload_types:
            if payload_type not in offered_types:
                raise SdpError(
                    f"answer uses payload type {payload_type}, which the offer did not include"
                )
        choice = _choose_codec(payload_types, maps, local.codecs)
        if choice is None:
            raise SdpError(f"answer accepted media line {index + 1} with no codec we support")
        codec, payload_type = choice
        wanted = _wanted_direction(answer, theirs)
        ours_direction = offer.direction_for(ours)
        address, rtcp_port = _remote_endpoint(answer, theirs, index)
        return NegotiatedAudio(
            media_index=index,
            codec=codec,
            payload_type=payload_type,
            telephone_event_payload_type=_telephone_event(payload_types, maps, codec.clock_rate),
            remote_address=address,
            remote_port=theirs.port,
            remote_rtcp_port=rtcp_port,
            direction=Direction.of(
                wanted.receives and ours_direction.sends, wanted.sends and ours_direction.receives
            ),
            remote_hold=is_hold(answer, theirs),
            ptime=theirs.ptime or DEFAULT_PTIME,
        )
    raise SdpError("answer rejected every audio stream")
