"""Mixing three or more parties in linear PCM: conferences and supervisor monitoring.

Who hears whom is a matrix rebuilt only when membership or a role changes; each tick is
then one integer matrix product over the members' frames (numpy), clipped to 16 bits.
Roles, for member j heard by member i (never i == j: nobody hears themself):
- PARTICIPANT (and BARGE, the name for a supervisor who joined openly): heard by all;
- LISTEN (silent monitor): heard by nobody;
- WHISPER: heard only by its target (the agent being coached), not by the caller;
and every member hears every member that is audible to it, whatever its own role.
Inputs: each member's received audio is buffered up to MAX_BUFFER_MS (the oldest dropped
beyond), and each tick takes one frame from each, silence when a member sent nothing.
"""

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from telportal.media.audio import FRAME_PCM_BYTES, FRAME_SAMPLES, SAMPLE_RATE

MAX_BUFFER_MS = 60
_MAX_BUFFER_BYTES = MAX_BUFFER_MS * SAMPLE_RATE // 1000 * 2


class MixRole(enum.StrEnum):
    PARTICIPANT = "participant"
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"


@dataclass(slots=True)
class _Member:
    role: MixRole
    whisper_to: str | None
    buffer: bytearray


class Mixer:
    def __init__(self, mix_id: str) -> None:
        self.mix_id = mix_id
        self._members: dict[str, _Member] = {}
        self._order: list[str] = []
        self._matrix: npt.NDArray[np.int32] | None = None

    def __contains__(self, member: object) -> bool:
        return member in self._members

    def __len__(self) -> int:
        return len(self._members)

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(self._order)

    def role(self, member: str) -> MixRole:
        return self._members[member].role

    def add(self, member: str, role: MixRole, whisper_to: str | None = None) -> None:
        """Add a member, or change its role if it is already in."""
        if role is MixRole.WHISPER:
            if whisper_to is None:
                raise ValueError("a whisperer needs the member it whispers to")
            if whisper_to == member:
                raise ValueError("a member cannot whisper to itself")
        elif whisper_to is not None:
            raise ValueError(f"only a whisperer has a target, not a {role} member")
        existing = self._members.get(member)
        if existing is None:
            self._members[member] = _Member(role, whisper_to, bytearray())
            self._order.append(member)
        else:
            existing.role, existing.whisper_to = role, whisper_to
        self._matrix = None

    def remove(self, member: str) -> None:
        if self._members.pop(member, None) is not None:
            self._order.remove(member)
            self._matrix = None

    def push(self, member: str, pcm: bytes) -> None:
        """Audio received from `member`, 8 kHz 16-bit PCM of any length."""
        entry = self._members.get(member)
        if entry is None:
            return
        buffer = entry.buffer
        buffer += pcm
        excess = len(buffer) - _MAX_BUFFER_BYTES
        if excess > 0:
            del buffer[: excess + (excess & 1)]

    def hears(self, listener: str, speaker: str) -> bool:
        if listener == speaker:
            return False
        member = self._members[speaker]
        if member.role is MixRole.LISTEN:
            return False
        if member.role is MixRole.WHISPER:
            return member.whisper_to == listener
        return True

    def matrix(self) -> npt.NDArray[np.int32]:
        """matrix[i, j] is 1 when member i hears member j, in `members` order."""
        if self._matrix is None:
            order = self._order
            self._matrix = np.array(
                [[int(self.hears(i, j)) for j in order] for i in order], dtype=np.int32
            ).reshape(len(order), len(order))
        return self._matrix

    def _take(self, member: _Member) -> bytes:
        buffer = member.buffer
        if len(buffer) >= FRAME_PCM_BYTES:
            frame = bytes(buffer[:FRAME_PCM_BYTES])
            del buffer[:FRAME_PCM_BYTES]
            return frame
        frame = bytes(buffer) + bytes(FRAME_PCM_BYTES - len(buffer))
        buffer.clear()
        return frame

    def mix(self) -> dict[str, bytes]:
        """One frame for each member: the sum of what it hears, clipped to 16 bits."""
        if not self._order:
            return {}
        inputs = np.frombuffer(
            b"".join(self._take(self._members[m]) for m in self._order), dtype="<i2"
        ).reshape(len(self._order), FRAME_SAMPLES)
        mixed = self.matrix() @ inputs.astype(np.int32)
        clipped = np.clip(mixed, -32768, 32767).astype("<i2")
        return {member: clipped[i].tobytes() for i, member in enumerate(self._order)}
