"""Tags, branches and Call-IDs come from a pooled CSPRNG block: fresh, well-formed, and
never repeated, not even by a forked child."""

import os
import re

from telportal.random_pool import RandomHex
from telportal.sip.transaction_messages import new_branch, new_call_id, new_tag
from telportal.sip.via import BRANCH_MAGIC_COOKIE


def test_identifiers_have_their_sizes_and_are_hex() -> None:
    assert re.fullmatch(r"[0-9a-f]{16}", new_tag())
    assert re.fullmatch(r"[0-9a-f]{32}", new_call_id())
    branch = new_branch()
    assert branch.startswith(BRANCH_MAGIC_COOKIE)
    assert re.fullmatch(r"[0-9a-f]{24}", branch.removeprefix(BRANCH_MAGIC_COOKIE))


def test_no_identifier_repeats_across_many_refills() -> None:
    pool = RandomHex(block=64)  # a refill every few identifiers
    taken = [pool.take(16) for _ in range(20_000)]
    assert len(set(taken)) == len(taken)
    assert all(len(t) == 16 for t in taken)


def test_a_request_larger_than_the_block_is_served_whole() -> None:
    pool = RandomHex(block=4)
    assert re.fullmatch(r"[0-9a-f]{40}", pool.take(40))


def test_a_forked_child_does_not_repeat_its_parent() -> None:
    pool = RandomHex()
    pool.take(16)  # the parent has a block in hand
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next identifier and leave at once
        os.write(write, pool.take(16).encode())
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert status == 0
    assert re.fullmatch(r"[0-9a-f]{16}", child)
    assert child != pool.take(16)  # without the reset both would take the same slice


def test_integers_are_uniform_over_their_range() -> None:
    pool = RandomHex(block=64)
    assert {pool.bits(1) for _ in range(200)} == {0, 1}
    assert all(0 <= pool.bits(62) < 1 << 62 for _ in range(1000))
    assert max(pool.bits(62) for _ in range(1000)) >= 1 << 60  # the top bits are used
    counts = [0] * 6
    for _ in range(6000):
        counts[pool.below(6)] += 1
    assert all(800 < count < 1200 for count in counts), counts  # ~1000 each
    assert {pool.below(1) for _ in range(10)} == {0}
