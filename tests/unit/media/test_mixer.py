"""Mixing roles, checked by ear: each party sends its own tone, we measure what each hears."""

import numpy as np
import pytest

from telportal.media.mixer import Mixer, MixRole
from telportal.sdp import PCMA, PCMU
from tests.unit.media.support import Harness, frames_of, goertzel_level, sine_pcm

TONES = {"caller": 500.0, "agent": 1100.0, "supervisor": 1700.0, "guest": 2300.0}
AMPLITUDE = 5000
PRESENT = AMPLITUDE * 0.6
ABSENT = AMPLITUDE * 0.03


def run_call(
    roles: dict[str, tuple[MixRole, str | None]], seconds: float = 1.0
) -> dict[str, set[str]]:
    """Everyone talks at once for `seconds`; returns whose tone each party heard."""
    harness = Harness()
    codecs = {"caller": PCMU, "agent": PCMA, "supervisor": PCMU, "guest": PCMA}
    peers = {name: harness.add(name, 4000 + 2 * i, codecs[name]) for i, name in enumerate(roles)}
    for name, (role, target) in roles.items():
        harness.switch.mix("room", name, role, target)
    voices = {name: frames_of(sine_pcm(TONES[name], seconds, AMPLITUDE)) for name in roles}
    for index in range(len(voices["caller"])):
        for name, peer in peers.items():
            peer.send(voices[name][index])
        harness.tick()
    heard: dict[str, set[str]] = {}
    for name, peer in peers.items():
        pcm = peer.heard()[8000:]  # past the first frames, when everyone is talking
        levels = {other: goertzel_level(pcm, TONES[other]) for other in roles}
        for other, level in levels.items():
            assert level > PRESENT or level < ABSENT, (name, other, level)
        heard[name] = {other for other, level in levels.items() if level > PRESENT}
    return heard


def test_listen_is_a_silent_monitor() -> None:
    heard = run_call(
        {
            "caller": (MixRole.PARTICIPANT, None),
            "agent": (MixRole.PARTICIPANT, None),
            "supervisor": (MixRole.LISTEN, None),
        }
    )
    assert heard == {
        "caller": {"agent"},
        "agent": {"caller"},
        "supervisor": {"caller", "agent"},
    }


def test_whisper_reaches_the_agent_only() -> None:
    heard = run_call(
        {
            "caller": (MixRole.PARTICIPANT, None),
            "agent": (MixRole.PARTICIPANT, None),
            "supervisor": (MixRole.WHISPER, "agent"),
        }
    )
    assert heard == {
        "caller": {"agent"},
        "agent": {"caller", "supervisor"},
        "supervisor": {"caller", "agent"},
    }


def test_barge_is_heard_by_all() -> None:
    heard = run_call(
        {
            "caller": (MixRole.PARTICIPANT, None),
            "agent": (MixRole.PARTICIPANT, None),
            "supervisor": (MixRole.BARGE, None),
        }
    )
    assert heard == {
        "caller": {"agent", "supervisor"},
        "agent": {"caller", "supervisor"},
        "supervisor": {"caller", "agent"},
    }


def test_small_conference_nobody_hears_themself() -> None:
    roles = {name: (MixRole.PARTICIPANT, None) for name in TONES}
    heard = run_call(roles)
    assert heard == {name: set(TONES) - {name} for name in TONES}


def test_role_change_mid_call() -> None:
    harness = Harness()
    for index, name in enumerate(("caller", "agent", "supervisor")):
        harness.add(name, 4000 + 2 * index)
        harness.switch.mix(
            "room", name, MixRole.LISTEN if name == "supervisor" else MixRole.PARTICIPANT
        )
    harness.switch.mix("room", "supervisor", MixRole.BARGE)
    assert harness.switch.mix_of("supervisor") == "room"
    harness.switch.unmix("supervisor")
    assert harness.switch.mix_of("supervisor") is None
    harness.switch.bridge("caller", "agent")  # leaving the mix for a plain bridge
    assert harness.switch.mix_of("caller") is None
    assert len(harness.scheduler) == 1  # only housekeeping: the empty mix is gone


def test_sum_is_clipped_not_wrapped() -> None:
    mixer = Mixer("m")
    for name in ("a", "b", "c"):
        mixer.add(name, MixRole.PARTICIPANT)
    loud = np.full(160, 30000, dtype="<i2").tobytes()
    mixer.push("a", loud)
    mixer.push("b", loud)
    out = mixer.mix()
    assert set(np.frombuffer(out["c"], dtype="<i2")) == {32767}
    assert set(np.frombuffer(out["a"], dtype="<i2")) == {30000}
    # Nothing more queued: silence next tick.
    assert set(np.frombuffer(mixer.mix()["c"], dtype="<i2")) == {0}


def test_matrix_and_role_rules() -> None:
    mixer = Mixer("m")
    mixer.add("caller", MixRole.PARTICIPANT)
    mixer.add("agent", MixRole.PARTICIPANT)
    mixer.add("boss", MixRole.WHISPER, "agent")
    assert mixer.matrix().tolist() == [[0, 1, 0], [1, 0, 1], [1, 1, 0]]
    with pytest.raises(ValueError, match="needs the member"):
        mixer.add("x", MixRole.WHISPER)
    with pytest.raises(ValueError, match="itself"):
        mixer.add("x", MixRole.WHISPER, "x")
    with pytest.raises(ValueError, match="only a whisperer"):
        mixer.add("x", MixRole.LISTEN, "agent")
    mixer.remove("agent")
    assert mixer.matrix().tolist() == [[0, 0], [1, 0]]
    assert mixer.members == ("caller", "boss")
