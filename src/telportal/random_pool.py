"""Random identifiers and numbers from the operating system's CSPRNG, read 4 KiB at a time.

A call needs a dozen fresh random values: SIP tags, branches and a Call-ID; a media
endpoint's id, its RTP SSRC, first sequence number and timestamp, its SDP session id.
`secrets` makes a `getrandom` system call for each, which cost 2-4% of a call's CPU
(py-spy, bench/sip_calls.py). Slicing a pooled block gives the same unpredictable bits,
each handed out once. A forked child starts with an empty pool, so that it never
repeats its parent's values.
"""

import os
import threading


class RandomHex:
    def __init__(self, block: int = 4096) -> None:
        self._block = block
        self._digits = ""
        self._at = 0
        self._lock = threading.Lock()  # the loop's thread, and perhaps a worker's
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._digits, self._at = "", 0

    def take(self, digits: int) -> str:
        """`digits` hex digits (4 random bits each), never handed out before."""
        with self._lock:
            at = self._at
            end = at + digits
            if end > len(self._digits):
                self._digits = os.urandom(max(self._block, (digits + 1) // 2)).hex()
                at, end = 0, digits
            self._at = end
            return self._digits[at:end]

    def bits(self, n: int) -> int:
        """A uniform integer of `n` random bits, as `secrets.randbits(n)`."""
        return int(self.take((n + 3) // 4), 16) >> (-n % 4)

    def below(self, n: int) -> int:
        """A uniform integer in [0, n), as `secrets.randbelow(n)`."""
        if n <= 0:
            raise ValueError("the upper bound must be positive")
        width = n.bit_length()
        while True:  # rejection: fewer than two draws on average
            value = self.bits(width)
            if value < n:
                return value


POOL = RandomHex()
