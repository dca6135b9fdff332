"""Matching requests to server transactions (RFC 3261 17.2.3, 9.2), RFC 2543 peers included."""

import pytest

from telportal.sip import Headers, Request, Response, make_response, parse_sip_uri
from telportal.sip.transaction import (
    Deliver,
    Dropped,
    Send,
    State,
    Stray,
    TimerSettings,
    server_transaction_id,
)
from tests.unit.sip.test_transaction_helpers import (
    UDP,
    Layer,
    Peer,
    kinds,
    new_layer,
    only,
    request,
)

QUIET = TimerSettings(trying_delay=None)
OLD_VIA = "SIP/2.0/UDP 192.0.2.10:5060"  # RFC 2543: no branch


def received(layer: Layer, req: Request) -> Deliver[Peer]:
    (delivered,) = only(layer.receive(req, UDP, UDP.reliable), Deliver)
    return delivered


def test_same_branch_from_another_sent_by_is_another_transaction() -> None:
    layer, _ = new_layer(QUIET)
    first = received(layer, request("OPTIONS", branch="z9hG4bKsame", sent_by="192.0.2.10"))
    second = received(layer, request("OPTIONS", branch="z9hG4bKsame", sent_by="192.0.2.11"))
    assert first.transaction != second.transaction
    assert len(layer) == 2


def test_same_branch_with_another_method_is_another_transaction() -> None:
    layer, _ = new_layer(QUIET)
    first = received(layer, request("INVITE", branch="z9hG4bKsame"))
    second = received(layer, request("OPTIONS", branch="z9hG4bKsame"))
    assert (first.transaction.method, second.transaction.method) == ("INVITE", "OPTIONS")


def test_cancel_is_its_own_transaction_and_names_the_invite_it_targets() -> None:
    layer, _ = new_layer(QUIET)
    invite = request("INVITE", branch="z9hG4bKinv")
    invite_txn = received(layer, invite).transaction
    cancel = request("CANCEL", branch="z9hG4bKinv")
    delivered = received(layer, cancel)
    assert delivered.transaction == server_transaction_id(cancel)
    assert delivered.transaction.method == "CANCEL"
    assert delivered.cancels == invite_txn
    assert layer.receive(cancel, UDP, UDP.reliable) == []  # retransmitted CANCEL, in Trying
    assert layer.state_of(invite_txn) is State.PROCEEDING


def test_cancel_for_no_invite_names_none() -> None:
    layer, _ = new_layer(QUIET)
    assert received(layer, request("CANCEL")).cancels is None


def test_ack_matching_no_transaction_goes_to_the_tu_as_stray() -> None:
    layer, _ = new_layer(QUIET)
    ack = request("ACK", to_tag="t")
    assert layer.receive(ack, UDP, UDP.reliable) == [Stray(ack, UDP)]
    assert len(layer) == 0


# -- RFC 2543 peers: no magic cookie -------------------------------------------------


def test_rfc2543_invite_matches_its_retransmission_and_ack_by_the_response_tag() -> None:
    layer, _ = new_layer(QUIET)
    invite = request("INVITE", via=OLD_VIA)
    txn = received(layer, invite).transaction
    assert txn.rfc2543
    assert txn.branch.startswith("rfc2543 sip:bob@192.0.2.20 to-tag= from-tag=1928301774")
    assert layer.receive(invite, UDP, UDP.reliable) == []
    busy = make_response(invite, 486, to_tag="t1")
    layer.send_response(txn, busy)
    assert layer.receive(invite, UDP, UDP.reliable) == [Send(busy.to_bytes(), UDP, busy, txn)]

    wrong = request("ACK", via=OLD_VIA, to_tag="not-ours")
    assert layer.receive(wrong, UDP, UDP.reliable) == [Stray(wrong, UDP)]
    assert layer.state_of(txn) is State.COMPLETED
    ack = request("ACK", via=OLD_VIA, to_tag="t1")
    assert layer.receive(ack, UDP, UDP.reliable) == []
    assert layer.state_of(txn) is State.CONFIRMED


def test_rfc2543_branch_without_magic_cookie_is_matched_the_old_way() -> None:
    layer, _ = new_layer(QUIET)
    txn = received(layer, request("OPTIONS", branch="1234")).transaction
    assert txn.rfc2543
    assert (
        layer.receive(request("OPTIONS", branch="1234"), UDP, UDP.reliable) == []
    )  # retransmission
    assert len(layer) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"uri": "sip:carol@192.0.2.20"},
        {"to_tag": "x"},
        {"from_tag": "other"},
        {"call_id": "other@192.0.2.10"},
        {"cseq": 2},
        {"via": "SIP/2.0/UDP 192.0.2.10:5070"},
        {"method": "OPTIONS"},
    ],
)
def test_rfc2543_requests_differing_in_any_matched_field_are_new(change: dict[str, object]) -> None:
    layer, _ = new_layer(QUIET)
    received(layer, request("INVITE", via=OLD_VIA))
    fields: dict[str, object] = {"via": OLD_VIA} | change
    method = str(fields.pop("method", "INVITE"))
    other = request(method, **fields)  # type: ignore[arg-type]
    assert kinds(layer.receive(other, UDP, UDP.reliable)) == [f"Deliver {method}"]
    assert len(layer) == 2


def test_rfc2543_reinvite_is_acked_with_its_own_to_tag() -> None:
    layer, _ = new_layer(QUIET)
    reinvite = request("INVITE", via=OLD_VIA, to_tag="dlg", cseq=2)
    txn = received(layer, reinvite).transaction
    layer.send_response(txn, make_response(reinvite, 488))
    assert layer.receive(request("ACK", via=OLD_VIA, to_tag="dlg", cseq=2), UDP, UDP.reliable) == []
    assert layer.state_of(txn) is State.CONFIRMED


def test_rfc2543_ack_for_2xx_reaches_the_tu_in_accepted() -> None:
    layer, _ = new_layer(QUIET)
    invite = request("INVITE", via=OLD_VIA)
    txn = received(layer, invite).transaction
    layer.send_response(txn, make_response(invite, 200, to_tag="t1"))
    ack = request("ACK", via=OLD_VIA, to_tag="t1")
    assert layer.receive(ack, UDP, UDP.reliable) == [Deliver(ack, txn, UDP)]


def test_rfc2543_cancel_targets_its_invite() -> None:
    layer, _ = new_layer(QUIET)
    invite_txn = received(layer, request("INVITE", via=OLD_VIA)).transaction
    delivered = received(layer, request("CANCEL", via=OLD_VIA))
    assert delivered.cancels == invite_txn
    assert delivered.transaction.rfc2543


# -- unreadable messages ---------------------------------------------------------------


def test_a_response_with_an_unreadable_via_is_dropped_with_the_reason() -> None:
    layer, _ = new_layer(QUIET)
    headers = Headers([("Via", "garbage"), ("CSeq", "1 INVITE"), ("Call-ID", "c")])
    response = Response(200, "OK", headers)
    (dropped,) = layer.receive(response, UDP, UDP.reliable)
    assert isinstance(dropped, Dropped)
    assert dropped.reason.startswith("Via header: ")
    assert (dropped.message, dropped.source) == (response, UDP)


def test_a_request_without_via_is_dropped() -> None:
    layer, _ = new_layer(QUIET)
    bare = Request("OPTIONS", parse_sip_uri("sip:bob@192.0.2.20"), Headers([("CSeq", "1 OPTIONS")]))
    assert layer.receive(bare, UDP, UDP.reliable) == [Dropped(bare, UDP, "Via header: missing")]
    assert len(layer) == 0


def test_an_rfc2543_request_without_from_is_dropped() -> None:
    layer, _ = new_layer(QUIET)
    headers = Headers(
        [("Via", OLD_VIA), ("CSeq", "1 OPTIONS"), ("Call-ID", "c"), ("To", "<sip:b@h>")]
    )
    bare = Request("OPTIONS", parse_sip_uri("sip:bob@192.0.2.20"), headers)
    assert layer.receive(bare, UDP, UDP.reliable) == [Dropped(bare, UDP, "From header: missing")]
