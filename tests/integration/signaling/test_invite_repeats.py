"""An INVITE retransmitted over UDP reaches its transaction unparsed (a `Repeat`) in the
running server, and gets what the parsed retransmission would: its answer again."""

import asyncio
import contextlib

from tests.integration.signaling.conftest import Edge
from tests.integration.signaling.test_conformance_udp import (
    LOCALHOST,
    exchange,
    request,
    udp_socket,
)


async def test_a_repeated_invite_gets_its_challenge_again_without_being_read_again(
    edge: Edge,
) -> None:
    sip = edge.platform.sip
    assert sip is not None
    server = (LOCALHOST, edge.port)
    with contextlib.ExitStack() as stack:
        phone = udp_socket(stack)
        # Not from a trunk: challenged (RFC 3261 22), a final answer its transaction keeps.
        invite = request(edge.port, phone.getsockname()[1], "INVITE", "1001")
        first = await exchange(phone, invite, server)
        assert first.status == 401
        before = sip.transport.stats()["udp"]
        again = await exchange(phone, invite, server)
        after = sip.transport.stats()["udp"]
    assert again.to_bytes() == first.to_bytes()  # the same answer, sent again
    assert after["repeats"] - before["repeats"] == 1
    assert after["messages_in"] - before["messages_in"] == 1
    await asyncio.sleep(0.2)  # let the edge finish with the ACK-less transaction's sends
