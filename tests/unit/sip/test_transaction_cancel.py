"""CANCEL (RFC 3261 9): building it, sending it from a client, answering it on a server."""

import re

import pytest

from telportal.clock import FakeClock
from telportal.sip import BRANCH_MAGIC_COOKIE, Request, Response, make_response, parse_message
from telportal.sip.transaction import (
    Deliver,
    Send,
    State,
    Terminated,
    Timeout,
    TimerSettings,
    TransactionId,
    TransactionLayer,
    TransactionStateError,
    UnknownTransaction,
    client_transaction_id,
    make_ack,
    make_cancel,
    new_branch,
    new_tag,
    server_transaction_id,
)
from tests.unit.sip.test_transaction_helpers import (
    UDP,
    Layer,
    kinds,
    new_layer,
    only,
    request,
    respond,
    run_until,
    sent,
)

INVITE_WITH_ROUTES = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8;rport\r\n"
    b"Via: SIP/2.0/UDP bigbox3.site3.atlanta.example.com;branch=z9hG4bK77ef4c2312983.1\r\n"
    b"Max-Forwards: 69\r\n"
    b"Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
    b"Route: <sip:p3.example.com;lr>\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b'From: "Alice, the caller" <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n"
)


def parsed_invite() -> Request:
    message = parse_message(INVITE_WITH_ROUTES)
    assert isinstance(message, Request)
    return message


def test_make_cancel_follows_rfc_3261_9_1() -> None:
    invite = parsed_invite()
    cancel = make_cancel(invite)
    assert cancel.method == "CANCEL"
    assert cancel.uri == invite.uri
    for name in ("To", "From", "Call-ID"):
        assert cancel.headers.get(name) == invite.headers.get(name), name
    assert (cancel.cseq.number, cancel.cseq.method) == (314159, "CANCEL")
    assert cancel.headers.get_all("Via") == [
        "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8;rport"
    ]
    assert cancel.headers.get_all("Route") == invite.headers.get_all("Route")
    assert cancel.max_forwards == 70
    assert cancel.body == b""
    assert "Contact" not in cancel.headers
    assert "Content-Type" not in cancel.headers
    assert cancel.to_bytes() == (
        b"CANCEL sip:bob@biloxi.example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8;rport\r\n"
        b"Max-Forwards: 70\r\n"
        b"Route: <sip:p1.example.com;lr>\r\n"
        b"Route: <sip:p2.example.com;lr>\r\n"
        b"Route: <sip:p3.example.com;lr>\r\n"
        b"To: Bob <sip:bob@biloxi.example.com>\r\n"
        b'From: "Alice, the caller" <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
        b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
        b"CSeq: 314159 CANCEL\r\n"
        b"Content-Length: 0\r\n"
        b"\r\n"
    )
    # The CANCEL matches the INVITE at the server (9.2): same branch and sent-by.
    assert server_transaction_id(cancel).branch == server_transaction_id(invite).branch
    assert server_transaction_id(cancel).sent_by == server_transaction_id(invite).sent_by


def test_make_ack_for_non_2xx_follows_rfc_3261_17_1_1_3() -> None:
    invite = parsed_invite()
    busy = make_response(invite, 486, to_tag="a6c85cf")
    ack = make_ack(invite, busy)
    assert ack.method == "ACK"
    assert ack.uri == invite.uri
    assert ack.headers.get("To") == "Bob <sip:bob@biloxi.example.com>;tag=a6c85cf"
    assert ack.headers.get("From") == invite.headers.get("From")
    assert ack.call_id == invite.call_id
    assert str(ack.cseq) == "314159 ACK"
    assert ack.headers.get_all("Via") == [invite.headers.get_all("Via")[0]]
    assert ack.headers.get_all("Route") == invite.headers.get_all("Route")


def test_make_cancel_needs_the_headers_it_copies() -> None:
    invite = parsed_invite()
    invite.headers.remove("Via")
    with pytest.raises(ValueError, match="the INVITE has no Via header"):
        make_cancel(invite)
    invite = parsed_invite()
    invite.headers.remove("Call-ID")
    with pytest.raises(ValueError, match="no Call-ID header to copy into the CANCEL"):
        make_cancel(invite)


# -- the client side ---------------------------------------------------------------------


def calling() -> tuple[Layer, FakeClock, Request, TransactionId]:
    layer, clock = new_layer()
    invite = request("INVITE")
    txn, _ = layer.send_request(invite, UDP)
    return layer, clock, invite, txn


def test_cancel_in_proceeding_goes_out_at_once_as_its_own_transaction() -> None:
    layer, clock, invite, txn = calling()
    layer.receive(respond(invite, 180), UDP, UDP.reliable)
    actions = layer.cancel(txn)
    (send,) = actions
    assert isinstance(send, Send)
    cancel = send.message
    assert isinstance(cancel, Request)
    assert cancel.to_bytes() == make_cancel(invite).to_bytes()
    assert send.destination == UDP
    assert send.transaction == client_transaction_id(cancel)
    assert layer.state_of(client_transaction_id(cancel)) is State.TRYING
    assert layer.cancel(txn) == []  # once is enough

    cancel_ok = respond(cancel, 200)
    assert layer.receive(cancel_ok, UDP, UDP.reliable) == [
        Deliver(cancel_ok, client_transaction_id(cancel), UDP)
    ]
    terminated = respond(invite, 487)
    assert kinds(layer.receive(terminated, UDP, UDP.reliable)) == ["Deliver 487", "Send ACK"]
    assert layer.state_of(txn) is State.COMPLETED
    run_until(layer, clock, 60.0)
    assert (len(layer), layer.timer_count, layer.timer_heap_size) == (0, 0, 0)


def test_cancel_in_calling_waits_for_a_provisional_response() -> None:
    layer, _, invite, txn = calling()
    assert layer.cancel(txn) == []  # 9.1: MUST NOT be sent before a provisional
    assert len(layer) == 1
    assert kinds(layer.receive(respond(invite, 100, to_tag=None), UDP, UDP.reliable)) == [
        "Deliver 100",
        "Send CANCEL",
    ]
    assert layer.cancel(txn) == []
    assert len(layer) == 2


def test_cancel_in_calling_is_never_sent_if_a_final_response_comes_first() -> None:
    layer, clock, invite, txn = calling()
    layer.cancel(txn)
    assert kinds(layer.receive(respond(invite, 200), UDP, UDP.reliable)) == ["Deliver 200"]
    assert layer.receive(respond(invite, 180), UDP, UDP.reliable) == []
    assert layer.cancel(txn) == []
    run_until(layer, clock, 60.0)
    assert len(layer) == 0


@pytest.mark.parametrize("status", [200, 486])
def test_cancel_after_a_final_response_does_nothing(status: int) -> None:
    layer, _, invite, txn = calling()
    layer.receive(respond(invite, status), UDP, UDP.reliable)
    assert layer.cancel(txn) == []
    assert len(layer) == 1


def test_cancel_of_a_gone_transaction_does_nothing_and_of_a_non_invite_fails() -> None:
    layer, _, _, txn = calling()
    layer.transport_error(txn)
    assert layer.cancel(txn) == []
    options, _ = layer.send_request(request("OPTIONS"), UDP)
    with pytest.raises(ValueError, match="only an INVITE client transaction can be cancelled"):
        layer.cancel(options)


def test_invite_without_final_response_ends_64_t1_after_its_cancel() -> None:
    layer, clock, invite, txn = calling()
    layer.receive(respond(invite, 180), UDP, UDP.reliable)
    clock.advance(10.0)
    (send,) = only(layer.cancel(txn), Send)
    cancel_txn = send.transaction
    assert cancel_txn is not None
    assert isinstance(send.message, Request)
    layer.receive(respond(send.message, 200), UDP, UDP.reliable)
    timeline = run_until(layer, clock, 60.0)
    assert timeline == [
        (15.0, Terminated(cancel_txn)),  # Timer K after the 200 to the CANCEL
        (42.0, Timeout(txn)),  # 9.1: no final response 64*T1 after the CANCEL
        (42.0, Terminated(txn)),
    ]


# -- the server side ---------------------------------------------------------------------


def server_with_invite(
    tags: str = "gen",
) -> tuple[Layer, Request, TransactionId, TransactionId]:
    layer: Layer = TransactionLayer(
        FakeClock(), TimerSettings(trying_delay=None), tag_factory=lambda: tags
    )
    invite = request("INVITE", branch="z9hG4bKinv")
    layer.receive(invite, UDP, UDP.reliable)
    cancel = request("CANCEL", branch="z9hG4bKinv")
    (delivered,) = only(layer.receive(cancel, UDP, UDP.reliable), Deliver)
    assert delivered.cancels == server_transaction_id(invite)
    return layer, invite, server_transaction_id(invite), delivered.transaction


def test_accept_cancel_answers_200_and_487_with_the_provisional_to_tag() -> None:
    layer, invite, invite_txn, cancel_txn = server_with_invite()
    layer.send_response(invite_txn, make_response(invite, 180, to_tag="ringtag"))
    actions = layer.accept_cancel(cancel_txn)
    assert kinds(actions) == ["Send 200", "Send 487"]
    assert [send.transaction for send in only(actions, Send)] == [cancel_txn, invite_txn]
    responses = [response for response in sent(actions) if isinstance(response, Response)]
    assert [response.to.tag for response in responses] == ["ringtag", "ringtag"]
    assert [response.cseq.method for response in responses] == ["CANCEL", "INVITE"]
    assert layer.state_of(invite_txn) is State.COMPLETED
    assert layer.state_of(cancel_txn) is State.COMPLETED
    ack = make_ack(invite, responses[1])
    assert layer.receive(ack, UDP, UDP.reliable) == []
    assert layer.state_of(invite_txn) is State.CONFIRMED


def test_accept_cancel_before_any_provisional_uses_the_given_or_a_new_tag() -> None:
    layer, _, _, cancel_txn = server_with_invite()
    responses = sent(layer.accept_cancel(cancel_txn, to_tag="given"))
    assert [response.to.tag for response in responses] == ["given", "given"]
    layer, _, _, cancel_txn = server_with_invite(tags="fresh")
    responses = sent(layer.accept_cancel(cancel_txn))
    assert [response.to.tag for response in responses] == ["fresh", "fresh"]


def test_accept_cancel_of_an_answered_invite_only_answers_the_cancel() -> None:
    layer, invite, invite_txn, cancel_txn = server_with_invite()
    layer.send_response(invite_txn, make_response(invite, 200, to_tag="ok"))
    actions = layer.accept_cancel(cancel_txn)
    assert kinds(actions) == ["Send 200"]
    assert [response.to.tag for response in sent(actions)] == ["ok"]  # the 2xx's tag
    assert layer.state_of(invite_txn) is State.ACCEPTED


def test_accept_cancel_matching_no_invite_answers_481() -> None:
    layer: Layer = TransactionLayer(FakeClock(), tag_factory=lambda: "t")
    cancel = request("CANCEL")
    (delivered,) = only(layer.receive(cancel, UDP, UDP.reliable), Deliver)
    assert delivered.cancels is None
    assert kinds(layer.accept_cancel(delivered.transaction)) == ["Send 481"]


def test_accept_cancel_refuses_what_is_not_a_waiting_cancel() -> None:
    layer, _, invite_txn, cancel_txn = server_with_invite()
    with pytest.raises(UnknownTransaction, match="is not a CANCEL transaction"):
        layer.accept_cancel(invite_txn)
    layer.accept_cancel(cancel_txn)
    with pytest.raises(TransactionStateError, match="has been answered already"):
        layer.accept_cancel(cancel_txn)


# -- identifiers ------------------------------------------------------------------------


def test_new_branch_has_the_magic_cookie_and_at_least_64_random_bits() -> None:
    branches = {new_branch() for _ in range(10_000)}
    assert len(branches) == 10_000
    for branch in list(branches)[:100]:
        assert branch.startswith("z9hG4bK")
        random_part = branch[len(BRANCH_MAGIC_COOKIE) :]
        assert re.fullmatch("[0-9a-f]{24}", random_part)  # 96 bits
    tags = {new_tag() for _ in range(10_000)}
    assert len(tags) == 10_000
    assert all(re.fullmatch("[0-9a-f]{16}", tag) for tag in list(tags)[:100])
