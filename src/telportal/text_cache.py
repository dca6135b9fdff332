"""Bounded caches of what was parsed from short texts.

The SIP and SDP parsers keep what they parse from a header value, a URI or an SDP line,
keyed by its text, because the same texts come back message after message. Their
entries are bounded in number; the texts must be bounded in length too. A value can
be nearly as long as a datagram (64 KiB), and anyone can send one: 4,096 entries of
such keys would pin a quarter of a gigabyte per cache. Texts longer than
MAX_CACHED_TEXT are parsed every time and never kept. Real values are far shorter: a
Via, a From with its tag, a Contact with its parameters stay under 300 characters.
"""

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

MAX_CACHED_TEXT = 512

T = TypeVar("T")


def short_text_cache(maxsize: int) -> Callable[[Callable[[str], T]], Callable[[str], T]]:
    """Like `functools.lru_cache(maxsize)` for a function of one text, keeping only
    texts of at most MAX_CACHED_TEXT characters. Errors are never kept."""

    def decorate(parse: Callable[[str], T]) -> Callable[[str], T]:
        cached = functools.lru_cache(maxsize=maxsize)(parse)

        @functools.wraps(parse)
        def lookup(text: str) -> T:
            if len(text) > MAX_CACHED_TEXT:
                return parse(text)
            return cached(text)

        wrapper = cast(Any, lookup)
        wrapper.cache_info = cached.cache_info
        wrapper.cache_clear = cached.cache_clear
        return lookup

    return decorate
