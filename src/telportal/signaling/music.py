"""Built-in music on hold, for queues without their own and for calls put on hold."""

from telportal.media import MediaEngine, PlayItem, Playlist, PlaySilence, PlayTone
from telportal.rtp.tones import Tone

# A slow four-note figure, quiet, with rests: unmistakably "please hold", never loud.
_NOTES = (523.25, 659.25, 783.99, 659.25)
BUILTIN_MUSIC: tuple[PlayItem, ...] = (
    *(PlayTone(Tone((f,), (-22.0,), (380, 120), repeat=False), 500) for f in _NOTES),
    PlaySilence(600),
)


async def play_hold_music(engine: MediaEngine, endpoint_id: str) -> None:
    """The built-in music, looping on `endpoint_id` until `stop_play`: what a held
    party hears, whether the API, the agent's phone or the caller's phone held it."""
    await engine.play(endpoint_id, Playlist(BUILTIN_MUSIC, loop=True), barge_in=False)
