"""Media configuration checks and the RTP/RTCP port allocator."""

import socket

import pytest

from telportal.media.config import MediaConfig
from telportal.media.errors import PortsExhaustedError
from telportal.media.ports import PortAllocator
from telportal.sdp import Codec


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"bind_address": "localhost"}, "not an IP address"),
        ({"bind_address": "0.0.0.0"}, "advertised_address is required"),
        ({"port_min": 80}, "within 1024-65535"),
        ({"port_min": 20001, "port_max": 20001}, "no even/odd port pair"),
        ({"codecs": ()}, "at least one"),
        ({"codecs": (Codec("G729", 8000, 18),)}, "not supported"),
        ({"rtp_timeout": 0}, "positive"),
        ({"scheduler_slots": 0}, "out of 1-20"),
    ],
)
def test_bad_settings_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MediaConfig(**options)  # type: ignore[arg-type]


def test_wildcard_bind_with_an_advertised_address() -> None:
    config = MediaConfig(bind_address="0.0.0.0", advertised_address="198.51.100.7")
    assert config.sdp_address == "198.51.100.7"
    assert MediaConfig(port_min=20001).first_port == 20002


def test_even_rtp_odd_rtcp_round_robin_and_busy_ports_skipped() -> None:
    allocator = PortAllocator("127.0.0.1", 45001, 45008)  # pairs 45002, 45004, 45006
    assert allocator.capacity == 3
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", 45005))  # the RTCP port of the second pair is taken
    opened: list[socket.socket] = [blocker]
    try:
        port, rtp, rtcp = allocator.allocate()
        opened += [rtp, rtcp]
        assert port == 45002
        assert (rtp.getsockname()[1], rtcp.getsockname()[1]) == (45002, 45003)
        port2, rtp2, rtcp2 = allocator.allocate()
        opened += [rtp2, rtcp2]
        assert port2 == 45006
        with pytest.raises(PortsExhaustedError, match="45002-45008"):
            allocator.allocate()
        # A freed pair is reused, but only after the others were tried.
        for sock in (rtp, rtcp):
            sock.close()
        allocator.release(port)
        port3, rtp3, rtcp3 = allocator.allocate()
        opened += [rtp3, rtcp3]
        assert port3 == 45002
        assert allocator.in_use == frozenset({45002, 45006})
    finally:
        for sock in opened:
            sock.close()
