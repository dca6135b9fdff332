"""Hands out one pre-encoded 20 ms frame per scheduler tick from a list of clips.

A player never converts or encodes: it walks tuples of frames that the clip cache built
once. It ends when the last frame is out (unless looping), when stopped, or on a key
press if barge-in is on for this play; the reason is kept for the PlayFinished event.
"""

import enum
from collections.abc import Sequence

from telportal.media.audio import G711Law
from telportal.media.clips import EncodedClip


class PlayEndReason(enum.StrEnum):
    COMPLETED = "completed"
    BARGED_IN = "barged_in"
    STOPPED = "stopped"
    REPLACED = "replaced"
    CLOSED = "closed"


class Player:
    __slots__ = (
        "_clip",
        "_frame",
        "_frames",
        "barge_in",
        "clips",
        "frames_played",
        "law",
        "loop",
        "play_id",
        "reason",
    )

    def __init__(
        self,
        play_id: str,
        clips: Sequence[EncodedClip],
        law: G711Law,
        *,
        loop: bool = False,
        barge_in: bool = True,
    ) -> None:
        self.play_id = play_id
        self.clips = tuple(clip for clip in clips if clip.frame_count)
        self.loop = loop
        self.barge_in = barge_in
        self.law = law
        self.reason: PlayEndReason | None = None if self.clips else PlayEndReason.COMPLETED
        self.frames_played = 0
        self._clip = 0
        self._frame = 0
        self._frames = self.clips[0].frames(law) if self.clips else ()

    @property
    def finished(self) -> bool:
        return self.reason is not None

    def set_law(self, law: G711Law) -> None:
        """The leg renegotiated its codec: go on with the same clips in the new law."""
        self.law = law
        if self.clips:
            self._frames = self.clips[self._clip].frames(law)

    def next_frame(self) -> bytes | None:
        """The next frame, or None once finished (the reason is then set)."""
        if self.reason is not None:
            return None
        frames = self._frames
        if self._frame >= len(frames):
            self._clip += 1
            if self._clip >= len(self.clips):
                if not self.loop:
                    self.reason = PlayEndReason.COMPLETED
                    return None
                self._clip = 0
            frames = self._frames = self.clips[self._clip].frames(self.law)
            self._frame = 0
        frame = frames[self._frame]
        self._frame += 1
        self.frames_played += 1
        return frame

    def digit(self) -> bool:
        """A key was pressed: stop if this play allows barge-in. Returns whether it stopped."""
        if self.barge_in and self.reason is None:
            self.reason = PlayEndReason.BARGED_IN
            return True
        return False

    def stop(self, reason: PlayEndReason = PlayEndReason.STOPPED) -> bool:
        if self.reason is not None:
            return False
        self.reason = reason
        return True
