"""Request methods (RFC 3261 section 27.4 and the extensions registered since)."""

from typing import Final

INVITE: Final = "INVITE"
ACK: Final = "ACK"
BYE: Final = "BYE"
CANCEL: Final = "CANCEL"
OPTIONS: Final = "OPTIONS"
REGISTER: Final = "REGISTER"
PRACK: Final = "PRACK"  # RFC 3262
SUBSCRIBE: Final = "SUBSCRIBE"  # RFC 6665
NOTIFY: Final = "NOTIFY"  # RFC 6665
PUBLISH: Final = "PUBLISH"  # RFC 3903
INFO: Final = "INFO"  # RFC 6086
REFER: Final = "REFER"  # RFC 3515
MESSAGE: Final = "MESSAGE"  # RFC 3428
UPDATE: Final = "UPDATE"  # RFC 3311

RFC3261_METHODS: Final = frozenset({INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER})
KNOWN_METHODS: Final = RFC3261_METHODS | frozenset(
    {PRACK, SUBSCRIBE, NOTIFY, PUBLISH, INFO, REFER, MESSAGE, UPDATE}
)
