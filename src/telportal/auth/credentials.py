"""Hashing of every secret we keep. Nothing a user can log in with is stored in the clear.

Passwords are argon2id (slow on purpose). Bearer tokens and API keys are 256-bit
random values, so a single SHA-256 is enough to make a stolen table useless and
keeps per-request checks cheap. SIP secrets must stay usable for digest
authentication, so only their HA1 values are kept (RFC 2617, RFC 8760).
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

TOKEN_PREFIX = "tpt_"  # noqa: S105 - a marker, not a secret
API_KEY_PREFIX = "tpk_"


class Passwords:
    """argon2id hashing; tests build it with cheap parameters."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        # Verifying against this when a user does not exist takes as long as a
        # real check, so response time does not tell which usernames exist.
        self._dummy = self._hasher.hash(secrets.token_hex(16))

    @classmethod
    def fast_for_tests(cls) -> "Passwords":
        return cls(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class NewApiKey:
    secret: str
    prefix: str
    hash: str


def new_api_key() -> NewApiKey:
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return NewApiKey(secret=secret, prefix=secret[:12], hash=sha256_hex(secret))


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True)
class DigestSecrets:
    ha1_md5: str
    ha1_sha256: str


def digest_secrets(username: str, realm: str, password: str) -> DigestSecrets:
    """HA1 = H(username:realm:password) for the two digest algorithms we accept."""
    a1 = f"{username}:{realm}:{password}".encode()
    return DigestSecrets(
        ha1_md5=hashlib.md5(a1, usedforsecurity=False).hexdigest(),
        ha1_sha256=hashlib.sha256(a1).hexdigest(),
    )
