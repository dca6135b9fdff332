"""Built-in music on hold, for queues without their own and for calls put on hold."""

from telportal.media import PlayItem, PlaySilence, PlayTone
from telportal.rtp.tones import Tone

# A slow four-note figure, quiet, with rests: unmistakably "please hold", never loud.
_NOTES = (523.25, 659.25, 783.99, 659.25)
BUILTIN_MUSIC: tuple[PlayItem, ...] = (
    *(PlayTone(Tone((f,), (-22.0,), (380, 120), repeat=False), 500) for f in _NOTES),
    PlaySilence(600),
)
