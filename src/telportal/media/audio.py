"""The one audio format inside the engine: 8 kHz mono, 20 ms frames, and the two G.711 laws.

Everything that plays, records or mixes works on 16-bit signed little-endian linear PCM at
8 kHz, cut into frames of FRAME_SAMPLES; the network side carries the same frames encoded
with the law each leg negotiated. Keeping one rate and one frame size means a prompt is
converted once, when it is loaded, and never per call.
"""

import enum

from telportal.rtp.g711 import (
    pcma_decode,
    pcma_encode,
    pcma_to_pcmu,
    pcmu_decode,
    pcmu_encode,
    pcmu_to_pcma,
)
from telportal.sdp import PCMA, PCMU, Codec

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
FRAME_PCM_BYTES = 2 * FRAME_SAMPLES
SILENT_PCM_FRAME = bytes(FRAME_PCM_BYTES)


class G711Law(enum.Enum):
    """A G.711 companding law; its value is the SDP encoding name."""

    PCMU = "PCMU"
    PCMA = "PCMA"

    @classmethod
    def of(cls, codec: Codec) -> "G711Law":
        # A dict, not a walk over the members: an enum's iteration and its `value` are
        # Python-level code, about 2 us each time a call's media is negotiated.
        law = _LAWS.get(codec.name.upper()) if codec.clock_rate == SAMPLE_RATE else None
        if law is None:
            raise ValueError(f"codec {codec} is not G.711 at 8 kHz")
        return law

    @property
    def codec(self) -> Codec:
        return PCMU if self is G711Law.PCMU else PCMA

    def encode(self, pcm: bytes) -> bytes:
        return pcmu_encode(pcm) if self is G711Law.PCMU else pcma_encode(pcm)

    def decode(self, data: bytes) -> bytes:
        return pcmu_decode(data) if self is G711Law.PCMU else pcma_decode(data)

    def transcode(self, data: bytes, to: "G711Law") -> bytes:
        """`data` in this law re-encoded in `to`; one table lookup per byte."""
        if to is self:
            return data
        return pcmu_to_pcma(data) if self is G711Law.PCMU else pcma_to_pcmu(data)

    @property
    def silent_frame(self) -> bytes:
        return _SILENT_FRAMES[self]


_SILENT_FRAMES = {law: law.encode(SILENT_PCM_FRAME) for law in G711Law}
_LAWS = {law.value: law for law in G711Law}  # by SDP encoding name
