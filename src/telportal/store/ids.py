"""Row ids: UUIDv7 (RFC 9562), rising with time, with 74 random bits.

Compiled (`telportal.compiled`): every call record takes one, and the interpreted
version was a fifth of what starting a record cost the call.
"""

import time
from typing import Final

from telportal.random_pool import POOL as RANDOM

# A hex digit's 2 low bits under the RFC 9562 variant bits (10xx: 8, 9, a or b).
_VARIANT: Final = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


def new_id() -> str:
    """A UUIDv7 (RFC 9562): the Unix time in milliseconds, then 74 random bits.

    Rows made one after another get rising ids, so an insert lands on the right-hand
    leaf of its primary-key index, as an integer key's would: a random UUID dirtied
    a random page of every such index (one more WAL frame a row in each COMMIT, and
    a page to read from disk once the index outgrows the cache). The time is the
    wall clock's, not the injected one: an id's order is about storage, not domain
    time, and nothing reads the time back out of it."""
    # The random digits come from the pooled block (`random_pool`), not a getrandom
    # call each: one id a call record, and the call's other random values come from
    # there too. 19 hex digits: 3 for rand_a, 16 for the variant's 2 spare bits and
    # rand_b (the first of them keeps its 2 low bits under the variant's "10").
    t = f"{time.time_ns() // 1_000_000:012x}"
    r = RANDOM.take(19)
    return f"{t[:8]}-{t[8:]}-7{r[:3]}-{_VARIANT[r[3]]}{r[4:7]}-{r[7:]}"
