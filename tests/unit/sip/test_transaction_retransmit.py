"""TwoHundredRetransmitter: 2xx to INVITE resent until the ACK (RFC 3261 13.3.1.4)."""

import pytest

from telportal.clock import FakeClock
from telportal.sip import Response, make_response
from telportal.sip.transaction import (
    AckKey,
    NoAck,
    Send,
    TimerSettings,
    TwoHundredRetransmitter,
    make_ack,
)
from tests.unit.sip.test_transaction_helpers import TCP, UDP, Peer, advance_to, request


def ok_for(call_id: str = "c1@192.0.2.10", tag: str = "uas") -> tuple[Response, AckKey]:
    invite = request("INVITE", call_id=call_id, cseq=7)
    ok = make_response(invite, 200, to_tag=tag)
    return ok, AckKey(call_id, 7, "1928301774", tag)


Retransmitter = TwoHundredRetransmitter[Peer]


def drive(
    retransmitter: Retransmitter, clock: FakeClock, until: float
) -> list[tuple[float, Send[Peer] | NoAck[Peer]]]:
    timeline: list[tuple[float, Send[Peer] | NoAck[Peer]]] = []
    while (deadline := retransmitter.next_deadline()) is not None and deadline <= until:
        advance_to(clock, deadline)
        timeline += [(deadline, item) for item in retransmitter.tick()]
    return timeline


def test_2xx_is_resent_at_t1_doubling_to_t2_then_given_up_at_64_t1() -> None:
    clock = FakeClock()
    retransmitter = Retransmitter(clock)
    ok, key = ok_for()
    assert retransmitter.start(ok, UDP) == key
    timeline = drive(retransmitter, clock, 100.0)
    resent = [t for t, item in timeline if isinstance(item, Send)]
    assert resent == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert all(
        item == Send(ok.to_bytes(), UDP, ok, None) for _, item in timeline if isinstance(item, Send)
    )
    assert timeline[-1] == (32.0, NoAck(key, ok, UDP))
    assert len(retransmitter) == 0
    assert retransmitter.next_deadline() is None
    assert retransmitter.timer_heap_size == 0


def test_2xx_is_resent_over_reliable_transports_too() -> None:
    clock = FakeClock()
    retransmitter = Retransmitter(clock)
    ok, _ = ok_for()
    retransmitter.start(ok, TCP)
    assert [t for t, _ in drive(retransmitter, clock, 4.0)] == [0.5, 1.5, 3.5]


def test_give_up_wins_when_a_retransmission_falls_on_64_t1() -> None:
    clock = FakeClock()
    retransmitter = Retransmitter(clock, TimerSettings(t1=1.0, t2=16.0))
    ok, key = ok_for()
    retransmitter.start(ok, UDP)
    timeline = drive(retransmitter, clock, 100.0)
    assert [t for t, item in timeline if isinstance(item, Send)] == [1, 3, 7, 15, 31, 47, 63]
    assert timeline[-1] == (64.0, NoAck(key, ok, UDP))


def test_the_ack_stops_retransmission() -> None:
    clock = FakeClock()
    retransmitter = Retransmitter(clock)
    invite = request("INVITE", call_id="c1@192.0.2.10", cseq=7)
    ok = make_response(invite, 200, to_tag="uas")
    retransmitter.start(ok, UDP)
    drive(retransmitter, clock, 2.0)
    other_dialog = request("ACK", call_id="c1@192.0.2.10", cseq=7, to_tag="another-uas")
    assert not retransmitter.ack_received(other_dialog)
    earlier_cseq = request("ACK", call_id="c1@192.0.2.10", cseq=6, to_tag="uas")
    assert not retransmitter.ack_received(earlier_cseq)
    # The ACK for a 2xx has a branch of its own; only the dialog and CSeq number count.
    ack = request("ACK", call_id="c1@192.0.2.10", cseq=7, to_tag="uas")
    assert retransmitter.ack_received(ack)
    assert not retransmitter.ack_received(ack)
    assert drive(retransmitter, clock, 100.0) == []
    assert (len(retransmitter), retransmitter.timer_heap_size) == (0, 0)
    assert make_ack(invite, ok).to.tag == "uas"


def test_an_unreadable_ack_stops_nothing() -> None:
    retransmitter = Retransmitter(FakeClock())
    ack = request("ACK")
    ack.headers.set("CSeq", "not a number")
    assert not retransmitter.ack_received(ack)


def test_starting_again_replaces_the_response_and_restarts_the_schedule() -> None:
    clock = FakeClock()
    retransmitter = Retransmitter(clock)
    ok, key = ok_for()
    retransmitter.start(ok, UDP)
    clock.advance(10.0)
    again = make_response(request("INVITE", call_id="c1@192.0.2.10", cseq=7), 200, to_tag="uas")
    again.headers.add("Contact", "<sip:bob@192.0.2.20>")
    assert retransmitter.start(again, UDP) == key
    assert len(retransmitter) == 1
    timeline = drive(retransmitter, clock, 100.0)
    assert timeline[0] == (10.5, Send(again.to_bytes(), UDP, again, None))
    assert timeline[-1] == (42.0, NoAck(key, again, UDP))


def test_many_2xx_each_on_its_own_schedule() -> None:
    clock = FakeClock()
    retransmitter = Retransmitter(clock)
    keys = []
    for number in range(100):
        ok, _ = ok_for(call_id=f"call-{number}")
        keys.append(retransmitter.start(ok, UDP))
        clock.advance(0.01)
    for key in keys[::2]:
        assert retransmitter.stop(key)
    timeline = drive(retransmitter, clock, 100.0)
    gave_up = [item.key for _, item in timeline if isinstance(item, NoAck)]
    assert gave_up == keys[1::2]
    assert (len(retransmitter), retransmitter.timer_heap_size) == (0, 0)


@pytest.mark.parametrize(("status", "method"), [(180, "INVITE"), (486, "INVITE"), (200, "BYE")])
def test_only_2xx_to_invite_is_retransmitted(status: int, method: str) -> None:
    retransmitter = Retransmitter(FakeClock())
    response = make_response(request(method), status, to_tag="t")
    with pytest.raises(ValueError, match="only a 2xx to INVITE is retransmitted"):
        retransmitter.start(response, UDP)
