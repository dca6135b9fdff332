"""Server transactions (RFC 3261 17.2, RFC 6026 7.1), with the schedule written out."""

import gc

import pytest

from telportal.clock import FakeClock
from telportal.sip import Request, Response, make_response
from telportal.sip.transaction import (
    Deliver,
    Send,
    State,
    Stray,
    Terminated,
    Timeout,
    TimerSettings,
    TransactionId,
    TransactionLayer,
    TransactionStateError,
    TransportError,
    UnknownTransaction,
    is_reliable,
    make_ack,
    server_transaction_id,
)
from tests.unit.sip.test_transaction_helpers import (
    QUIET,
    TCP,
    UDP,
    Peer,
    kinds,
    new_layer,
    only,
    request,
    resends,
    run_until,
    sent,
    serve,
)


def test_new_invite_is_delivered_and_100_trying_follows_after_200_ms() -> None:
    layer, clock = new_layer()
    invite = request("INVITE")
    txn = server_transaction_id(invite)
    assert layer.receive(invite, UDP, UDP.reliable) == [Deliver(invite, txn, UDP)]
    assert layer.state_of(txn) is State.PROCEEDING
    assert layer.next_deadline() == 0.2
    timeline = run_until(layer, clock, 1.0)
    assert [(t, kinds([a])) for t, a in timeline] == [(0.2, ["Send 100"])]
    trying = sent([timeline[0][1]])[0]
    assert isinstance(trying, Response)
    assert trying.to.tag is None  # a 100 carries no tag
    assert trying.top_via.branch == invite.top_via.branch
    # A retransmitted INVITE now gets the 100 again.
    assert kinds(layer.receive(invite, UDP, UDP.reliable)) == ["Send 100"]


def test_no_100_trying_when_the_tu_answers_within_200_ms() -> None:
    layer, clock = new_layer()
    invite = request("INVITE")
    txn = server_transaction_id(invite)
    layer.receive(invite, UDP, UDP.reliable)
    clock.advance(0.1)
    assert kinds(layer.send_response(txn, make_response(invite, 180, to_tag="t"))) == ["Send 180"]
    assert layer.next_deadline() is None  # the 100 Trying timer was disarmed
    assert run_until(layer, clock, 1.0) == []


def test_100_trying_at_once_when_the_delay_is_zero() -> None:
    layer, _ = new_layer(TimerSettings(trying_delay=0.0))
    invite = request("INVITE")
    assert kinds(layer.receive(invite, UDP, UDP.reliable)) == ["Deliver INVITE", "Send 100"]


def test_invite_retransmission_before_any_response_is_absorbed() -> None:
    layer, _, txn, invite = serve()
    assert layer.receive(invite, UDP, UDP.reliable) == []
    assert layer.state_of(txn) is State.PROCEEDING


def test_invite_retransmission_in_proceeding_resends_the_last_provisional() -> None:
    layer, _, txn, invite = serve()
    ringing = make_response(invite, 180, to_tag="t")
    progress = make_response(invite, 183, to_tag="t")
    layer.send_response(txn, ringing)
    layer.send_response(txn, progress)
    assert layer.receive(invite, UDP, UDP.reliable) == [
        Send(progress.to_bytes(), UDP, progress, txn)
    ]


def test_invite_non_2xx_timer_g_doubles_to_t2_and_timer_h_times_out() -> None:
    layer, clock, txn, invite = serve()
    busy = make_response(invite, 486, to_tag="t")
    assert layer.send_response(txn, busy) == [Send(busy.to_bytes(), UDP, busy, txn)]
    assert layer.state_of(txn) is State.COMPLETED
    timeline = run_until(layer, clock, 40.0)
    resent = [t for t, action in timeline if isinstance(action, Send)]
    assert resent == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert all(action.message is busy for _, action in timeline if isinstance(action, Send))
    assert [(t, action) for t, action in timeline if not isinstance(action, Send)] == [
        (32.0, Timeout(txn)),  # Timer H: the ACK never came
        (32.0, Terminated(txn)),
    ]


def test_invite_non_2xx_ack_confirms_and_timer_i_ends_it() -> None:
    layer, clock, txn, invite = serve()
    busy = make_response(invite, 486, to_tag="t")
    layer.send_response(txn, busy)
    run_until(layer, clock, 2.0)  # G fired at 0.5 and 1.5
    # A retransmitted INVITE gets the final response again.
    assert layer.receive(invite, UDP, UDP.reliable) == [Send(busy.to_bytes(), UDP, busy, txn)]
    ack = make_ack(invite, busy)
    assert (
        layer.receive(ack, UDP, UDP.reliable) == []
    )  # the ACK for a non-2xx stays in the transaction
    assert layer.state_of(txn) is State.CONFIRMED
    assert layer.next_deadline() == 7.0  # Timer I = T4 from 2.0; G and H are gone
    assert layer.receive(ack, UDP, UDP.reliable) == []
    assert layer.receive(invite, UDP, UDP.reliable) == []
    assert run_until(layer, clock, 10.0) == [(7.0, Terminated(txn))]
    assert layer.receive(ack, UDP, UDP.reliable) == [Stray(ack, UDP)]


def test_invite_non_2xx_over_tcp_has_no_timer_g_and_ends_at_the_ack() -> None:
    layer, _, txn, invite = serve(peer=TCP)
    busy = make_response(invite, 486, to_tag="t")
    layer.send_response(txn, busy)
    assert layer.next_deadline() == 32.0  # Timer H only
    assert kinds(layer.receive(make_ack(invite, busy), TCP, TCP.reliable)) == ["Terminated"]
    assert (len(layer), layer.timer_count, layer.timer_heap_size) == (0, 0, 0)


def test_invite_non_2xx_over_tcp_times_out_without_ack() -> None:
    layer, clock, txn, invite = serve(peer=TCP)
    layer.send_response(txn, make_response(invite, 500, to_tag="t"))
    assert run_until(layer, clock, 40.0) == [(32.0, Timeout(txn)), (32.0, Terminated(txn))]


def test_invite_2xx_moves_to_accepted_where_the_tu_gets_the_ack() -> None:
    """RFC 6026 7.1: the transaction lives on for Timer L, without retransmitting."""
    layer, clock, txn, invite = serve()
    ok = make_response(invite, 200, to_tag="t")
    assert layer.send_response(txn, ok) == [Send(ok.to_bytes(), UDP, ok, txn)]
    assert layer.state_of(txn) is State.ACCEPTED
    assert layer.next_deadline() == 32.0  # Timer L; no retransmission timer
    clock.advance(0.5)
    assert layer.receive(invite, UDP, UDP.reliable) == []  # absorbed, not resent
    # The TU's own 2xx retransmissions pass through.
    assert layer.send_response(txn, ok) == [Send(ok.to_bytes(), UDP, ok, txn)]
    ack = make_ack(invite, ok)  # a peer that reuses the branch
    assert layer.receive(ack, UDP, UDP.reliable) == [Deliver(ack, txn, UDP)]
    assert layer.state_of(txn) is State.ACCEPTED
    with pytest.raises(TransactionStateError, match="accepted cannot send a 486"):
        layer.send_response(txn, make_response(invite, 486, to_tag="t"))
    assert run_until(layer, clock, 40.0) == [(32.0, Terminated(txn))]
    assert layer.receive(ack, UDP, UDP.reliable) == [Stray(ack, UDP)]


def test_an_accepted_invite_keeps_neither_its_request_nor_its_2xx() -> None:
    # Timer L keeps the transaction 32 s to absorb repeated INVITEs; the parsed
    # messages would only be more for the garbage collector to walk meanwhile.
    layer, _ = new_layer(QUIET)
    invite = request("INVITE", call_id="accepted-lets-go@192.0.2.10")
    txn = server_transaction_id(invite)
    layer.receive(invite, UDP, UDP.reliable)
    layer.send_response(txn, make_response(invite, 200, to_tag="kept-tag"))
    del invite
    assert layer.state_of(txn) is State.ACCEPTED
    gc.collect()
    held = [
        obj
        for obj in gc.get_objects()
        if isinstance(obj, Request | Response) and obj.call_id == "accepted-lets-go@192.0.2.10"
    ]
    assert held == []


def test_ack_for_2xx_with_its_own_branch_is_stray() -> None:
    layer, _, txn, invite = serve()
    layer.send_response(txn, make_response(invite, 200, to_tag="t"))
    ack = request("ACK", to_tag="t")  # a new branch, as RFC 3261 13.2.2.4 asks
    assert layer.receive(ack, UDP, UDP.reliable) == [Stray(ack, UDP)]


def test_non_invite_trying_absorbs_retransmissions_silently() -> None:
    layer, _, txn, options = serve("OPTIONS")
    assert layer.state_of(txn) is State.TRYING
    assert layer.next_deadline() is None
    assert layer.receive(options, UDP, UDP.reliable) == []


def test_non_invite_retransmissions_get_the_last_response_then_timer_j_ends_it() -> None:
    layer, clock, txn, register = serve("REGISTER")
    trying = make_response(register, 100)
    layer.send_response(txn, trying)
    assert layer.state_of(txn) is State.PROCEEDING
    assert layer.receive(register, UDP, UDP.reliable) == [Send(trying.to_bytes(), UDP, trying, txn)]
    clock.advance(1.0)
    ok = make_response(register, 200, to_tag="t")
    layer.send_response(txn, ok)
    assert layer.state_of(txn) is State.COMPLETED
    again = layer.receive(register, UDP, UDP.reliable)
    assert len(again) == 1
    assert resends(again) == [(ok.to_bytes(), UDP, ok.to_bytes(), txn)]
    with pytest.raises(TransactionStateError, match="completed cannot send a 200"):
        layer.send_response(txn, ok)
    assert layer.next_deadline() == 33.0  # Timer J = 64*T1
    assert run_until(layer, clock, 40.0) == [(33.0, Terminated(txn))]
    # After Timer J the same request would be new: a new transaction, delivered again.
    assert kinds(layer.receive(register, UDP, UDP.reliable)) == ["Deliver REGISTER"]


def test_non_invite_final_over_tcp_terminates_at_once() -> None:
    layer, _, txn, options = serve("OPTIONS", peer=TCP)
    actions = layer.send_response(txn, make_response(options, 200, to_tag="t"))
    assert kinds(actions) == ["Send 200", "Terminated"]
    assert (len(layer), layer.timer_count) == (0, 0)


@pytest.mark.parametrize(("method", "status"), [("INVITE", 180), ("OPTIONS", 100)])
def test_transport_error_ends_a_server_transaction(method: str, status: int) -> None:
    layer, _, txn, req = serve(method)
    layer.send_response(txn, make_response(req, status, to_tag="t"))
    assert layer.transport_error(txn) == [TransportError(txn), Terminated(txn)]


def test_send_response_to_an_unknown_or_client_transaction_fails() -> None:
    layer, _, txn, invite = serve()
    response = make_response(invite, 200, to_tag="t")
    client = TransactionId(server=False, method=txn.method, branch=txn.branch)
    with pytest.raises(UnknownTransaction, match="no server transaction"):
        layer.send_response(client, response)
    layer.transport_error(txn)
    with pytest.raises(UnknownTransaction):
        layer.send_response(txn, response)


def test_server_transaction_id_is_branch_sent_by_and_method() -> None:
    invite = request("INVITE", branch="z9hG4bKabc", sent_by="PC33.Example.COM:5062")
    assert server_transaction_id(invite) == TransactionId(
        server=True, method="INVITE", branch="z9hG4bKabc", sent_by="pc33.example.com:5062"
    )
    ack = request("ACK", branch="z9hG4bKabc", sent_by="pc33.example.com:5062")
    assert server_transaction_id(ack) == server_transaction_id(invite)
    assert str(server_transaction_id(invite)) == "INVITE server z9hG4bKabc pc33.example.com:5062"


def test_responses_go_to_the_source_of_the_request_whatever_the_via_says() -> None:
    """The transport applies RFC 3261 18.2.2 to the source; the layer only passes it on."""
    source = Peer("UDP", "198.51.100.9", 40000)  # behind a NAT: not what the Via says
    req = request("OPTIONS", sent_by="10.0.0.5:5062")
    layer, _ = new_layer(QUIET)
    layer.receive(req, source, source.reliable)
    txn = server_transaction_id(req)
    (send,) = only(layer.send_response(txn, make_response(req, 200, to_tag="t")), Send)
    assert send.destination is source


def test_the_layer_takes_any_address_type() -> None:
    layer: TransactionLayer[str] = TransactionLayer(FakeClock())
    txn, actions = layer.send_request(request("OPTIONS", transport="TCP"), "conn-17")
    assert [(send.destination, send.transaction) for send in only(actions, Send)] == [
        ("conn-17", txn)
    ]
    assert layer.next_deadline() == 32.0  # TCP, from the Via: no Timer E
    txn, _ = layer.send_request(request("OPTIONS", transport="TCP"), "conn-18", reliable=False)
    assert layer.next_deadline() == 0.5  # told otherwise: Timer E runs


def test_reliability_of_via_transports() -> None:
    assert not is_reliable("UDP")
    assert not is_reliable("udp")
    assert all(is_reliable(name) for name in ("TCP", "TLS", "WS", "WSS", "SCTP"))
