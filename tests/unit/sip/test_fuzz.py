"""Random mutations of valid messages: the parsers may refuse them, but only with
SipParseError, and `screen_datagram` must never raise at all. Seeded, so a failure
reproduces; no hypothesis needed.
"""

import contextlib
import random
from collections.abc import Callable

import pytest

from telportal.sip import (
    MessageFramer,
    Request,
    Response,
    SipParseError,
    check_mandatory,
    check_request,
    make_response,
    parse_message,
    screen_datagram,
    uri_equal,
)
from tests.unit.sip.samples import REALISTIC

ROUNDS = 1500
# Octets that sit on the grammar's boundaries, where parsers tend to go wrong.
SPECIAL = [
    b";", b",", b":", b"=", b"@", b"<", b">", b'"', b"\\", b"[", b"]", b"?", b"&", b"%",
    b"%0", b"/", b" ", b"\t", b"\r\n", b"\r\n ", b"\n", b"\r", b"\x00", b"\xff", b"\xc3",
    b"9" * 30, b"-", b"*", b"sip:", b"SIP/2.0", b"\r\n\r\n",
]  # fmt: skip

Mutation = Callable[[random.Random, bytearray], None]


def flip(rng: random.Random, data: bytearray) -> None:
    data[rng.randrange(len(data))] = rng.randrange(256)


def insert(rng: random.Random, data: bytearray) -> None:
    at = rng.randrange(len(data) + 1)
    data[at:at] = rng.choice(SPECIAL)


def delete(rng: random.Random, data: bytearray) -> None:
    at = rng.randrange(len(data))
    del data[at : at + rng.randint(1, 12)]


def duplicate(rng: random.Random, data: bytearray) -> None:
    start = rng.randrange(len(data))
    piece = data[start : start + rng.randint(1, 80)]
    at = rng.randrange(len(data) + 1)
    data[at:at] = piece


def truncate(rng: random.Random, data: bytearray) -> None:
    del data[rng.randrange(len(data)) :]


MUTATIONS: list[Mutation] = [flip, insert, delete, duplicate, truncate]


def mutate(rng: random.Random, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(rng.randint(1, 4)):
        if not data:
            break
        rng.choice(MUTATIONS)(rng, data)
    return bytes(data)


def exercise(message: Request | Response) -> None:
    """Read everything a server would read; each read may refuse, none may crash."""
    for read in (
        lambda: message.call_id,
        lambda: message.cseq,
        lambda: message.from_,
        lambda: message.to,
        lambda: message.vias,
        lambda: message.contacts,
        lambda: message.routes,
        lambda: message.record_routes,
        lambda: message.max_forwards,
        lambda: message.content_length,
        lambda: message.expires,
        lambda: message.content_type,
    ):
        with contextlib.suppress(SipParseError):
            read()
    check_mandatory(message)
    assert parse_message(bytes(message)) is not None
    if isinstance(message, Request):
        assert uri_equal(message.uri, message.uri)
        check_request(message)
        bytes(make_response(message, 400, to_tag="x"))


@pytest.mark.parametrize("name", sorted(REALISTIC))
def test_mutated_messages_only_raise_sip_parse_error(name: str) -> None:
    rng = random.Random(f"telportal-{name}")
    original = REALISTIC[name]
    parsed = 0
    for _ in range(ROUNDS):
        data = mutate(rng, original)
        try:
            message = parse_message(data)
        except SipParseError:
            pass
        else:
            parsed += 1
            exercise(message)
        screen_datagram(data, to_tag="fuzz")
    # the mutations must leave enough messages parseable to test the typed fields too
    assert parsed > ROUNDS // 10


def test_mutated_streams_only_raise_sip_parse_error() -> None:
    rng = random.Random("telportal-stream")
    stream = b"".join(REALISTIC.values())
    for _ in range(ROUNDS // 5):
        data = mutate(rng, stream)
        framer = MessageFramer(max_size=4096)
        try:
            for offset in range(0, len(data), 97):
                for message in framer.feed(data[offset : offset + 97]):
                    exercise(message)
        except SipParseError:
            pass
