"""Settings of the embedded media engine, checked once when the engine is made."""

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from telportal.media.clips import DEFAULT_MEMORY_BUDGET
from telportal.media.session import DEFAULT_RTCP_INTERVAL, InbandDtmf
from telportal.media.switch import DEFAULT_RTP_TIMEOUT
from telportal.sdp import PCMA, PCMU, Codec

# 4,096 idle pairs are 8,192 sockets: at up to 4,000 calls/s every call reuses a pair
# idle for 1 s (the engine keeps fewer when the process may open few files, and closes
# waiting pairs when the port range runs out). A second is past any late packet of the
# old call: one the network held up, or one the phone sent before it read the BYE
# (decision 0037); 2 s needed more pairs than a 20,000-file limit allows at 2,000/s.
DEFAULT_IDLE_PORT_PAIRS = 4096
DEFAULT_PORT_REUSE_AFTER = 1.0


@dataclass(frozen=True, slots=True)
class MediaConfig:
    """`bind_address` is where sockets listen; `advertised_address` goes into our SDP
    (required when binding to a wildcard address). RTP uses the even ports of
    [port_min, port_max] and RTCP the odd port above each."""

    bind_address: str = "127.0.0.1"
    advertised_address: str | None = None
    port_min: int = 20000
    port_max: int = 29999
    codecs: tuple[Codec, ...] = (PCMU, PCMA)
    symmetric_rtp: bool = True
    relatch_after: float = 1.0
    inband_dtmf: InbandDtmf = InbandDtmf.AUTO
    rtp_timeout: float = DEFAULT_RTP_TIMEOUT
    rtcp_interval: float = DEFAULT_RTCP_INTERVAL
    scheduler_slots: int = 10
    max_late_frames: int = 3
    cache_dir: Path | None = None
    speech_dir: Path | None = None
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    # Port pairs of ended calls kept open for later calls (media/ports.py `PairPool`),
    # and how long one waits before it is reused. 0 pairs: close each at once.
    idle_port_pairs: int = DEFAULT_IDLE_PORT_PAIRS
    port_reuse_after: float = DEFAULT_PORT_REUSE_AFTER

    def __post_init__(self) -> None:
        for name in ("bind_address", "advertised_address"):
            value = getattr(self, name)
            if value is None:
                continue
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError(f"media {name} {value!r} is not an IP address") from None
        if self.advertised_address is None and ipaddress.ip_address(self.bind_address) in (
            ipaddress.ip_address("0.0.0.0"),  # noqa: S104 - a comparison, not a bind
            ipaddress.ip_address("::"),
        ):
            raise ValueError("media advertised_address is required with a wildcard bind_address")
        if not 1024 <= self.port_min <= self.port_max <= 65535:
            raise ValueError(
                f"media port range {self.port_min}-{self.port_max} must lie within 1024-65535"
            )
        if self.first_port + 1 > self.port_max:
            raise ValueError(
                f"media port range {self.port_min}-{self.port_max} holds no even/odd port pair"
            )
        if not self.codecs:
            raise ValueError("media codecs: at least one is needed")
        for codec in self.codecs:
            if codec not in (PCMU, PCMA):
                raise ValueError(f"media codec {codec} is not supported (PCMU, PCMA)")
        if self.rtp_timeout <= 0 or self.rtcp_interval <= 0 or self.relatch_after < 0:
            raise ValueError("media timeouts and intervals must be positive")
        if self.idle_port_pairs < 0 or self.port_reuse_after < 0:
            raise ValueError("media idle_port_pairs and port_reuse_after must not be negative")
        if not 1 <= self.scheduler_slots <= 20:
            raise ValueError(f"media scheduler_slots {self.scheduler_slots} is out of 1-20")

    @property
    def first_port(self) -> int:
        return self.port_min + (self.port_min & 1)

    @property
    def sdp_address(self) -> str:
        return self.advertised_address or self.bind_address
