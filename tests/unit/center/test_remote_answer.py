import pytest

from telportal.center.remote_answer import RingingPhones
from telportal.errors import Conflict


async def test_answer_sets_the_ringing_event_only_while_it_rings() -> None:
    phones = RingingPhones()
    with pytest.raises(Conflict, match="nothing is ringing"):
        phones.answer("t1", "a1")
    with phones.ringing("t1", "a1", remote_answer=True) as answer:
        assert phones.is_ringing("t1", "a1") and not phones.is_ringing("t2", "a1")
        with pytest.raises(Conflict):
            phones.answer("t2", "a1")  # another tenant's agent of the same id
        phones.answer("t1", "a1")
        assert answer.is_set()
    assert not phones.is_ringing("t1", "a1")
    with pytest.raises(Conflict):
        phones.answer("t1", "a1")


async def test_a_mobile_is_answered_on_the_phone() -> None:
    phones = RingingPhones()
    with phones.ringing("t1", "a1", remote_answer=False) as answer:
        with pytest.raises(Conflict, match="mobile"):
            phones.answer("t1", "a1")
        assert not answer.is_set()


async def test_a_newer_ring_is_not_removed_by_the_older_one_ending() -> None:
    phones = RingingPhones()
    first = phones.ringing("t1", "a1", remote_answer=True)
    first.__enter__()
    with phones.ringing("t1", "a1", remote_answer=True) as newer:
        first.__exit__(None, None, None)
        phones.answer("t1", "a1")
        assert newer.is_set()
