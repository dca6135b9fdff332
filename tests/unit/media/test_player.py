"""The player: one pre-encoded frame per tick, looping, barge-in and stop."""

import pytest

from telportal.media.audio import G711Law
from telportal.media.clips import EncodedClip
from telportal.media.player import PlayEndReason, Player
from tests.unit.media.support import sine_pcm


def clips() -> list[EncodedClip]:
    return [
        EncodedClip.from_pcm(sine_pcm(440, 0.06)),  # 3 frames
        EncodedClip.silence(40),  # 2 frames
    ]


def play_all(player: Player) -> list[bytes]:
    frames = []
    while (frame := player.next_frame()) is not None:
        frames.append(frame)
    return frames


def test_frames_come_out_in_order_then_it_completes() -> None:
    items = clips()
    player = Player("p1", items, G711Law.PCMU)
    frames = play_all(player)
    assert frames == [*items[0].frames(G711Law.PCMU), *items[1].frames(G711Law.PCMU)]
    assert player.reason is PlayEndReason.COMPLETED
    assert player.frames_played == 5
    assert player.next_frame() is None


def test_frames_are_the_cached_objects_not_copies() -> None:
    items = clips()
    player = Player("p1", items, G711Law.PCMA)
    assert player.next_frame() is items[0].frames(G711Law.PCMA)[0]


def test_loop_starts_over() -> None:
    items = clips()
    player = Player("moh", items, G711Law.PCMU, loop=True)
    frames = [player.next_frame() for _ in range(12)]
    expected = [*items[0].frames(G711Law.PCMU), *items[1].frames(G711Law.PCMU)]
    assert frames == (expected * 3)[:12]
    assert not player.finished


def test_barge_in_stops_on_a_digit() -> None:
    player = Player("p1", clips(), G711Law.PCMU, barge_in=True)
    player.next_frame()
    assert player.digit() is True
    assert player.reason is PlayEndReason.BARGED_IN
    assert player.next_frame() is None
    assert player.digit() is False


def test_without_barge_in_digits_are_ignored() -> None:
    player = Player("p1", clips(), G711Law.PCMU, barge_in=False)
    player.next_frame()
    assert player.digit() is False
    assert len(play_all(player)) == 4
    assert player.reason is PlayEndReason.COMPLETED


def test_stop_and_law_change_mid_play() -> None:
    items = clips()
    player = Player("p1", items, G711Law.PCMU)
    player.next_frame()
    player.set_law(G711Law.PCMA)
    assert player.next_frame() == items[0].frames(G711Law.PCMA)[1]
    assert player.stop() is True
    assert player.stop() is False
    assert player.reason is PlayEndReason.STOPPED


@pytest.mark.parametrize("loop", [False, True])
def test_empty_playlist_completes_at_once(loop: bool) -> None:
    player = Player("p1", [EncodedClip.silence(0)], G711Law.PCMU, loop=loop)
    assert player.finished
    assert player.next_frame() is None
