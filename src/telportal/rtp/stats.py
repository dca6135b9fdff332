"""Reception statistics for one RTP source (RFC 3550 appendices A.1, A.3 and A.8).

Sequence tracking follows A.1, quirks included, because the peer reads our report blocks
with the same arithmetic (the one change: probation also accepts 65535 -> 0):
- a new source is on probation until MIN_SEQUENTIAL packets arrive in sequence; the
  packets seen during probation are not counted, and `base_seq` is the packet that ends it;
- a jump of less than MAX_DROPOUT ahead is accepted (counting a wrap when the number goes
  down); a jump of more than MAX_MISORDER behind, or of MAX_DROPOUT or more ahead, is
  discarded unless the next packet follows it, which is taken as a restart of the source;
- anything else is a duplicate or a late packet: counted as received, max_seq unchanged.
So `lost` can be negative when duplicates arrive, as the RFC intends.

No clock is read here: each packet comes with its arrival time in seconds on any clock
that does not jump (the caller's monotonic clock), converted to timestamp units for A.8.
"""

from telportal.rtp.packet import RTP_SEQ_MOD, RTP_TIMESTAMP_MOD
from telportal.rtp.rtcp import ReportBlock, ntp_middle_32

MIN_SEQUENTIAL = 2
MAX_DROPOUT = 3000
MAX_MISORDER = 100

_HALF_TIMESTAMP = RTP_TIMESTAMP_MOD // 2
_CUMULATIVE_LOST_MAX = (1 << 23) - 1
_CUMULATIVE_LOST_MIN = -(1 << 23)
_DLSR_UNITS_PER_SECOND = 65536


class ReceiverStatistics:
    """What a receiver knows about one source, and the report block it sends about it."""

    def __init__(self, ssrc: int, clock_rate: int) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock rate {clock_rate} must be positive")
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self._started = False
        self._max_seq = 0
        self._cycles = 0
        self._base_seq = 0
        self._bad_seq = RTP_SEQ_MOD + 1
        self._probation = MIN_SEQUENTIAL
        # Times the source jumped and was taken as restarted (its timestamps start over).
        self.restarts = 0
        self._received = 0
        self._expected_prior = 0
        self._received_prior = 0
        self._transit: float | None = None
        self._jitter = 0.0
        self._last_sr = 0
        self._last_sr_arrival: float | None = None

    def _init_seq(self, seq: int) -> None:
        self._base_seq = seq
        self._max_seq = seq
        self._bad_seq = RTP_SEQ_MOD + 1
        self._cycles = 0
        self._received = 0
        self._received_prior = 0
        self._expected_prior = 0
        # A restarted source has a new timestamp base; its old transit time means nothing.
        self._transit = None

    def _update_seq(self, seq: int) -> bool:
        if not self._started:
            self._started = True
            self._init_seq(seq)
            self._max_seq = (seq - 1) % RTP_SEQ_MOD
            self._probation = MIN_SEQUENTIAL
        udelta = (seq - self._max_seq) % RTP_SEQ_MOD
        if self._probation:
            # A.1 compares with max_seq + 1 without a modulo; a source starting at 65535
            # would then never leave probation.
            if seq == (self._max_seq + 1) % RTP_SEQ_MOD:
                self._probation -= 1
                self._max_seq = seq
                if self._probation == 0:
                    self._init_seq(seq)
                    self._received += 1
                    return True
            else:
                self._probation = MIN_SEQUENTIAL - 1
                self._max_seq = seq
            return False
        if udelta < MAX_DROPOUT:
            if seq < self._max_seq:
                self._cycles += RTP_SEQ_MOD
            self._max_seq = seq
        elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:
            if seq != self._bad_seq:
                self._bad_seq = (seq + 1) % RTP_SEQ_MOD
                return False
            # Two packets in sequence after a big jump: the source restarted.
            self._init_seq(seq)
            self.restarts += 1
        self._received += 1
        return True

    def receive(self, sequence_number: int, timestamp: int, arrival: float) -> bool:
        """Account for one packet; False when it is discarded (probation or a wild jump)."""
        if not self._update_seq(sequence_number):
            return False
        transit = arrival * self.clock_rate - timestamp
        if self._transit is not None:
            # Fold the difference into a signed 32-bit range so a timestamp wrap is harmless.
            d = (transit - self._transit + _HALF_TIMESTAMP) % RTP_TIMESTAMP_MOD - _HALF_TIMESTAMP
            self._jitter += (abs(d) - self._jitter) / 16
        self._transit = transit
        return True

    def receive_sender_report(self, ntp_timestamp: int, arrival: float) -> None:
        """Remember an SR from this source, for the LSR and DLSR of our next report."""
        self._last_sr = ntp_middle_32(ntp_timestamp)
        self._last_sr_arrival = arrival

    @property
    def valid(self) -> bool:
        """Whether the source has left probation."""
        return self._started and not self._probation

    @property
    def received(self) -> int:
        return self._received

    @property
    def extended_highest_sequence(self) -> int:
        return self._cycles + self._max_seq

    @property
    def expected(self) -> int:
        if not self.valid:
            return 0
        return self.extended_highest_sequence - self._base_seq + 1

    @property
    def lost(self) -> int:
        return self.expected - self._received

    @property
    def jitter(self) -> float:
        """Interarrival jitter estimate in timestamp units (A.8)."""
        return self._jitter

    def report_block(self, now: float) -> ReportBlock:
        """The report block for our next SR or RR; starts a new fraction-lost interval."""
        expected = self.expected
        expected_interval = expected - self._expected_prior
        received_interval = self._received - self._received_prior
        self._expected_prior = expected
        self._received_prior = self._received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = (lost_interval << 8) // expected_interval
        delay = 0
        if self._last_sr_arrival is not None:
            delay = int((now - self._last_sr_arrival) * _DLSR_UNITS_PER_SECOND) & 0xFFFFFFFF
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            cumulative_lost=max(_CUMULATIVE_LOST_MIN, min(_CUMULATIVE_LOST_MAX, self.lost)),
            extended_highest_sequence=self.extended_highest_sequence & 0xFFFFFFFF,
            jitter=int(self._jitter),
            last_sr=self._last_sr,
            delay_since_last_sr=delay,
        )
