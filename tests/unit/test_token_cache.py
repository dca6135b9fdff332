"""The bearer cache: kept for its time only, never past the token's expiry, bounded,
and cleared so that a lookup begun before a revocation cannot put a stale answer back."""

from datetime import timedelta

from telportal.auth.token_cache import TokenCache
from telportal.clock import FakeClock
from telportal.tenancy.roles import Role, Scope

AGENT = Scope("t1", Role.AGENT, "user", "u1", "1001@acme")


def test_an_answer_is_kept_for_the_cache_time_only() -> None:
    clock = FakeClock()
    cache = TokenCache(clock, ttl=5)
    cache.put("k", AGENT, clock.now() + timedelta(hours=1), cache.generation)
    clock.advance(4.9)
    assert cache.get("k") == AGENT
    clock.advance(0.1)
    assert cache.get("k") is None
    assert len(cache) == 0


def test_an_expired_token_is_never_answered_from_the_cache() -> None:
    clock = FakeClock()
    cache = TokenCache(clock, ttl=5)
    cache.put("k", AGENT, clock.now() + timedelta(seconds=1), cache.generation)
    assert cache.get("k") == AGENT
    clock.advance(1)
    assert cache.get("k") is None


def test_the_oldest_entries_go_first_when_full() -> None:
    clock = FakeClock()
    cache = TokenCache(clock, ttl=5, max_entries=3)
    for key in "abcd":
        cache.put(key, AGENT, None, cache.generation)
    assert len(cache) == 3
    assert cache.get("a") is None
    assert [cache.get(k) for k in "bcd"] == [AGENT] * 3


def test_a_lookup_that_began_before_a_clear_is_not_kept() -> None:
    clock = FakeClock()
    cache = TokenCache(clock, ttl=5)
    began = cache.generation
    cache.clear()  # a revocation committed while the lookup read the store
    cache.put("k", AGENT, None, began)
    assert cache.get("k") is None
    cache.put("k", AGENT, None, cache.generation)
    cache.forget("k")
    assert cache.get("k") is None


def test_a_zero_cache_time_keeps_nothing() -> None:
    clock = FakeClock()
    cache = TokenCache(clock, ttl=0)
    cache.put("k", AGENT, None, cache.generation)
    assert cache.get("k") is None
