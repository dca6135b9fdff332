"""Client transactions (RFC 3261 17.1, RFC 6026 7.2), with the schedule written out."""

import pytest

from telportal.sip import Request, Response
from telportal.sip.transaction import (
    Deliver,
    Send,
    State,
    Stray,
    Terminated,
    Timeout,
    TimerSettings,
    TransactionId,
    TransportError,
    client_transaction_id,
    new_branch,
)
from tests.unit.sip.test_transaction_helpers import (
    TCP,
    TLS,
    UDP,
    Peer,
    kinds,
    new_layer,
    only,
    request,
    resends,
    respond,
    run_until,
    sent,
)


def test_invite_timer_a_doubles_from_t1_and_timer_b_times_out_at_64_t1() -> None:
    layer, clock = new_layer()
    invite = request("INVITE")
    txn, actions = layer.send_request(invite, UDP)
    assert actions == [Send(invite.to_bytes(), UDP, invite, txn)]
    assert txn == TransactionId(server=False, method="INVITE", branch=invite.top_via.branch or "")

    timeline = run_until(layer, clock, 40.0)
    resent = [moment for moment, action in timeline if isinstance(action, Send)]
    assert resent == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    intervals = [later - earlier for earlier, later in zip([0.0, *resent], resent, strict=False)]
    assert intervals == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    assert all(
        action.data == invite.to_bytes() for _, action in timeline if isinstance(action, Send)
    )
    assert [(moment, action) for moment, action in timeline if not isinstance(action, Send)] == [
        (32.0, Timeout(txn)),
        (32.0, Terminated(txn)),
    ]
    assert len(layer) == 0
    assert layer.next_deadline() is None


def test_timer_a_follows_a_configured_t1() -> None:
    layer, clock = new_layer(TimerSettings(t1=0.25))
    layer.send_request(request("INVITE"), UDP)
    timeline = run_until(layer, clock, 20.0)
    assert [moment for moment, action in timeline if isinstance(action, Send)] == [
        0.25,
        0.75,
        1.75,
        3.75,
        7.75,
        15.75,
    ]
    assert [moment for moment, action in timeline if isinstance(action, Timeout)] == [16.0]


@pytest.mark.parametrize("peer", [TCP, TLS])
def test_invite_over_a_reliable_transport_is_never_retransmitted(peer: Peer) -> None:
    layer, clock = new_layer()
    txn, actions = layer.send_request(request("INVITE", transport=peer.transport), peer)
    assert kinds(actions) == ["Send INVITE"]
    assert layer.next_deadline() == 32.0
    timeline = run_until(layer, clock, 40.0)
    assert timeline == [(32.0, Timeout(txn)), (32.0, Terminated(txn))]


def test_invite_provisional_response_stops_retransmission_and_timer_b() -> None:
    layer, clock = new_layer()
    invite = request("INVITE")
    txn, _ = layer.send_request(invite, UDP)
    run_until(layer, clock, 0.7)  # one retransmission at 0.5
    ringing = respond(invite, 180)
    assert layer.receive(ringing, UDP, UDP.reliable) == [Deliver(ringing, txn, UDP)]
    assert layer.state_of(txn) is State.PROCEEDING
    assert layer.next_deadline() is None  # RFC 3261: the TU (Timer C) decides from now on
    assert run_until(layer, clock, 1000.0) == []
    progress = respond(invite, 183)
    assert layer.receive(progress, UDP, UDP.reliable) == [Deliver(progress, txn, UDP)]
    assert layer.state_of(txn) is State.PROCEEDING


def test_invite_non_2xx_is_acked_by_the_transaction_and_retransmissions_absorbed() -> None:
    layer, clock = new_layer()
    invite = request("INVITE", routes=("<sip:proxy.example.com;lr>",))
    txn, _ = layer.send_request(invite, UDP)
    busy = respond(invite, 486)
    actions = layer.receive(busy, UDP, UDP.reliable)
    assert kinds(actions) == ["Deliver 486", "Send ACK"]
    assert actions[0] == Deliver(busy, txn, UDP)
    ack = sent(actions)[0]
    assert isinstance(ack, Request)
    assert only(actions, Send)[0].destination == UDP
    assert only(actions, Send)[0].transaction == txn
    # RFC 3261 17.1.1.3: same Request-URI, Call-ID, From, CSeq number, top Via and Route;
    # the To of the response, with its tag.
    assert ack.uri == invite.uri
    assert ack.call_id == invite.call_id
    assert ack.headers.get("From") == invite.headers.get("From")
    assert ack.headers.get("To") == busy.headers.get("To")
    assert ack.to.tag == "b7c2"
    assert (ack.cseq.number, ack.cseq.method) == (1, "ACK")
    assert ack.headers.get_all("Via") == [invite.headers.get_all("Via")[0]]
    assert ack.headers.get_all("Route") == ["<sip:proxy.example.com;lr>"]
    assert layer.state_of(txn) is State.COMPLETED

    clock.advance(1.0)
    again = layer.receive(busy, UDP, UDP.reliable)
    assert len(again) == 1  # ACK resent, TU not told again
    assert resends(again) == [(ack.to_bytes(), UDP, ack.to_bytes(), txn)]
    assert layer.receive(respond(invite, 180), UDP, UDP.reliable) == []
    assert layer.receive(respond(invite, 200), UDP, UDP.reliable) == []
    assert layer.next_deadline() == 32.0  # Timer D, from the first 486
    assert run_until(layer, clock, 40.0) == [(32.0, Terminated(txn))]
    assert layer.receive(busy, UDP, UDP.reliable) == [Stray(busy, UDP)]


def test_invite_non_2xx_over_tcp_terminates_at_once_after_the_ack() -> None:
    layer, _ = new_layer()
    invite = request("INVITE", transport="TCP")
    layer.send_request(invite, TCP)
    actions = layer.receive(respond(invite, 603), TCP, TCP.reliable)
    assert kinds(actions) == ["Deliver 603", "Send ACK", "Terminated"]
    assert len(layer) == 0
    assert layer.timer_count == 0


def test_invite_2xx_moves_to_accepted_and_passes_every_2xx_to_the_tu() -> None:
    """RFC 6026 7.2: retransmitted and forked 2xx reach the TU until Timer M."""
    layer, clock = new_layer()
    invite = request("INVITE")
    txn, _ = layer.send_request(invite, UDP)
    ok = respond(invite, 200)
    assert layer.receive(ok, UDP, UDP.reliable) == [
        Deliver(ok, txn, UDP)
    ]  # no ACK: the TU sends it
    assert layer.state_of(txn) is State.ACCEPTED
    assert layer.next_deadline() == 32.0  # Timer M; Timer A and B are gone

    clock.advance(0.5)
    assert layer.receive(ok, UDP, UDP.reliable) == [Deliver(ok, txn, UDP)]
    forked = respond(invite, 200, to_tag="other-fork")
    assert layer.receive(forked, UDP, UDP.reliable) == [Deliver(forked, txn, UDP)]
    assert layer.receive(respond(invite, 180), UDP, UDP.reliable) == []
    assert layer.receive(respond(invite, 486), UDP, UDP.reliable) == []
    assert run_until(layer, clock, 40.0) == [(32.0, Terminated(txn))]
    assert layer.receive(ok, UDP, UDP.reliable) == [Stray(ok, UDP)]


def test_invite_2xx_after_provisional_also_moves_to_accepted() -> None:
    layer, _ = new_layer()
    invite = request("INVITE", transport="TCP")
    txn, _ = layer.send_request(invite, TCP)
    layer.receive(respond(invite, 180), TCP, TCP.reliable)
    layer.receive(respond(invite, 200), TCP, TCP.reliable)
    assert layer.state_of(txn) is State.ACCEPTED  # Timer M is not zero over TCP
    assert layer.next_deadline() == 32.0


def test_non_invite_timer_e_doubles_up_to_t2_and_timer_f_times_out() -> None:
    layer, clock = new_layer()
    options = request("OPTIONS")
    txn, actions = layer.send_request(options, UDP)
    assert kinds(actions) == ["Send OPTIONS"]
    timeline = run_until(layer, clock, 40.0)
    resent = [moment for moment, action in timeline if isinstance(action, Send)]
    intervals = [later - earlier for earlier, later in zip([0.0, *resent], resent, strict=False)]
    assert intervals == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    assert resent[-1] == 31.5
    assert [action for _, action in timeline if not isinstance(action, Send)] == [
        Timeout(txn),
        Terminated(txn),
    ]
    assert timeline[-1][0] == 32.0


def test_non_invite_timer_e_is_t2_in_proceeding() -> None:
    """17.1.2.2: in Proceeding, Timer E is reset to T2 each time it fires."""
    layer, clock = new_layer()
    register = request("REGISTER")
    txn, _ = layer.send_request(register, UDP)
    assert [t for t, _ in run_until(layer, clock, 1.0)] == [0.5]  # E now due at 1.5
    trying = respond(register, 100, to_tag=None)
    assert layer.receive(trying, UDP, UDP.reliable) == [Deliver(trying, txn, UDP)]
    assert layer.state_of(txn) is State.PROCEEDING
    timeline = run_until(layer, clock, 40.0)
    resent = [moment for moment, action in timeline if isinstance(action, Send)]
    assert resent[:4] == [1.5, 5.5, 9.5, 13.5]
    assert resent[-1] == 29.5
    assert [(t, action) for t, action in timeline if not isinstance(action, Send)] == [
        (32.0, Timeout(txn)),
        (32.0, Terminated(txn)),
    ]


def test_non_invite_proceeding_keeps_the_trying_schedule_until_e_fires() -> None:
    layer, clock = new_layer(TimerSettings(t1=0.5, t2=4.0))
    options = request("OPTIONS")
    layer.send_request(options, UDP)
    run_until(layer, clock, 3.6)  # retransmissions at 0.5, 1.5, 3.5; E next at 7.5
    layer.receive(respond(options, 183), UDP, UDP.reliable)
    assert layer.next_deadline() == 7.5


def test_non_invite_final_response_completes_and_timer_k_absorbs_retransmissions() -> None:
    layer, clock = new_layer()
    options = request("OPTIONS")
    txn, _ = layer.send_request(options, UDP)
    clock.advance(0.25)
    ok = respond(options, 200)
    assert layer.receive(ok, UDP, UDP.reliable) == [Deliver(ok, txn, UDP)]
    assert layer.state_of(txn) is State.COMPLETED
    assert layer.receive(ok, UDP, UDP.reliable) == []
    assert layer.receive(respond(options, 404), UDP, UDP.reliable) == []
    assert layer.next_deadline() == 5.25  # Timer K = T4
    assert run_until(layer, clock, 10.0) == [(5.25, Terminated(txn))]


@pytest.mark.parametrize("status", [200, 404, 503])
def test_non_invite_final_response_over_tcp_terminates_at_once(status: int) -> None:
    layer, _ = new_layer()
    bye = request("BYE", transport="TCP", to_tag="b7c2")
    layer.send_request(bye, TCP)
    actions = layer.receive(respond(bye, status), TCP, TCP.reliable)
    assert kinds(actions) == [f"Deliver {status}", "Terminated"]
    assert (len(layer), layer.timer_count, layer.timer_heap_size) == (0, 0, 0)


@pytest.mark.parametrize("method", ["INVITE", "OPTIONS"])
def test_transport_error_ends_a_client_transaction(method: str) -> None:
    layer, _ = new_layer()
    txn, _ = layer.send_request(request(method), UDP)
    assert layer.transport_error(txn) == [TransportError(txn), Terminated(txn)]
    assert layer.transport_error(txn) == []  # late reports for a gone transaction
    assert (len(layer), layer.timer_count) == (0, 0)


def test_responses_are_told_apart_by_cseq_method_on_the_same_branch() -> None:
    """17.1.3: the branch alone does not match; a CANCEL shares its INVITE's branch."""
    layer, _ = new_layer()
    invite = request("INVITE")
    txn, _ = layer.send_request(invite, UDP)
    cancel_ok = respond(request("CANCEL", via=invite.headers.get_all("Via")[0]), 200)
    assert layer.receive(cancel_ok, UDP, UDP.reliable) == [Stray(cancel_ok, UDP)]
    assert layer.state_of(txn) is State.CALLING


def test_a_response_for_another_branch_is_stray() -> None:
    layer, _ = new_layer()
    layer.send_request(request("INVITE"), UDP)
    other = respond(request("INVITE"), 200)
    assert layer.receive(other, UDP, UDP.reliable) == [Stray(other, UDP)]
    unbranched = respond(request("INVITE", via="SIP/2.0/UDP 192.0.2.10:5060"), 200)
    assert layer.receive(unbranched, UDP, UDP.reliable) == [Stray(unbranched, UDP)]


def test_send_request_refuses_what_no_client_transaction_can_send() -> None:
    layer, _ = new_layer()
    with pytest.raises(ValueError, match="ACK is not sent through a client transaction"):
        layer.send_request(request("ACK"), UDP)
    with pytest.raises(ValueError, match="branch starting with z9hG4bK"):
        layer.send_request(request("OPTIONS", branch="1234"), UDP)
    with pytest.raises(ValueError, match="branch starting with z9hG4bK"):
        layer.send_request(request("OPTIONS", via="SIP/2.0/UDP 192.0.2.10"), UDP)
    with pytest.raises(ValueError, match="CSeq method INVITE differs from the OPTIONS"):
        layer.send_request(request("OPTIONS", cseq_method="INVITE"), UDP)
    options = request("OPTIONS")
    layer.send_request(options, UDP)
    with pytest.raises(ValueError, match="exists already"):
        layer.send_request(options, UDP)
    assert len(layer) == 1


def test_client_transaction_id_is_branch_and_method() -> None:
    branch = new_branch()
    assert client_transaction_id(request("BYE", branch=branch)) == TransactionId(
        server=False, method="BYE", branch=branch
    )
    assert str(client_transaction_id(request("BYE", branch=branch))) == f"BYE client {branch}"


def test_responses_carry_their_source_to_the_tu() -> None:
    layer, _ = new_layer()
    invite = request("INVITE")
    txn, _ = layer.send_request(invite, UDP)
    elsewhere = Peer("UDP", "198.51.100.7", 5070)
    ringing: Response = respond(invite, 180)
    assert layer.receive(ringing, elsewhere, elsewhere.reliable) == [
        Deliver(ringing, txn, elsewhere)
    ]
