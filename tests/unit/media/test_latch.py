"""Symmetric RTP latching rules."""

from telportal.media.latch import SymmetricLatch, Verdict

SIGNALLED = ("10.0.0.5", 4000)  # a private address from behind NAT
REAL = ("203.0.113.7", 61000)
OTHER = ("198.51.100.9", 5000)


def test_sends_to_the_signalled_address_until_a_valid_packet() -> None:
    latch = SymmetricLatch(SIGNALLED)
    assert latch.target == SIGNALLED
    assert latch.accept(REAL, 1.0) is Verdict.LATCHED
    assert latch.target == REAL
    assert latch.accept(REAL, 1.02) is Verdict.ACCEPT


def test_other_sources_are_dropped_while_the_latched_one_talks() -> None:
    latch = SymmetricLatch(SIGNALLED, relatch_after=1.0)
    latch.accept(REAL, 0.0)
    for step in range(1, 100):
        now = step * 0.02
        assert latch.accept(REAL, now) is Verdict.ACCEPT
        assert latch.accept(OTHER, now + 0.001) is Verdict.DROP
    assert latch.target == REAL


def test_relatch_after_the_latched_source_falls_silent() -> None:
    latch = SymmetricLatch(SIGNALLED, relatch_after=1.0)
    latch.accept(REAL, 0.0)
    assert latch.accept(OTHER, 0.99) is Verdict.DROP
    assert latch.accept(OTHER, 1.0) is Verdict.LATCHED
    assert latch.target == OTHER
    assert latch.relatches == 1
    assert latch.accept(REAL, 1.01) is Verdict.DROP


def test_new_sdp_forgets_the_latch() -> None:
    latch = SymmetricLatch(SIGNALLED)
    latch.accept(REAL, 0.0)
    latch.reset(("10.0.0.6", 4002))
    assert latch.target == ("10.0.0.6", 4002)
    assert latch.accept(OTHER, 0.1) is Verdict.LATCHED


def test_disabled_latch_uses_the_sdp_and_accepts_everyone() -> None:
    latch = SymmetricLatch(SIGNALLED, enabled=False)
    assert latch.accept(REAL, 0.0) is Verdict.ACCEPT
    assert latch.accept(OTHER, 0.0) is Verdict.ACCEPT
    assert latch.target == SIGNALLED
