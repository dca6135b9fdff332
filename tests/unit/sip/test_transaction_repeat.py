"""A retransmitted INVITE handed to its transaction by id, unparsed (`receive_repeat`):
the transport recognises a UDP repeat by its bytes, and the transaction must then do
exactly what it does with the parsed retransmission (RFC 3261 17.2.1, RFC 6026 7.1)."""

from telportal.sip import make_response
from telportal.sip.transaction import State, server_transaction_id
from tests.unit.sip.test_transaction_helpers import (
    UDP,
    Peer,
    kinds,
    request,
    resends,
    run_until,
    serve,
)


def test_before_any_response_the_repeat_is_absorbed() -> None:
    layer, _, txn, _ = serve()
    assert layer.receive_repeat(txn, UDP) == []
    assert layer.state_of(txn) is State.PROCEEDING


def test_a_repeat_gets_the_last_provisional_response_again_as_the_parsed_one_does() -> None:
    layer, _, txn, invite = serve()
    layer.send_response(txn, make_response(invite, 180, to_tag="t1"))
    repeated = layer.receive_repeat(txn, UDP)
    assert repeated is not None
    assert kinds(repeated) == ["Send 180"]
    assert resends(repeated) == resends(layer.receive(invite, UDP, UDP.reliable))


def test_a_repeat_gets_a_final_error_response_again_as_the_parsed_one_does() -> None:
    layer, _, txn, invite = serve()
    layer.send_response(txn, make_response(invite, 486, to_tag="t1"))
    assert layer.state_of(txn) is State.COMPLETED
    repeated = layer.receive_repeat(txn, UDP)
    assert repeated is not None
    assert kinds(repeated) == ["Send 486"]
    assert resends(repeated) == resends(layer.receive(invite, UDP, UDP.reliable))


def test_a_repeat_of_an_accepted_invite_is_absorbed_from_rest_and_rests_again() -> None:
    layer, clock, txn, invite = serve()
    layer.send_response(txn, make_response(invite, 200, to_tag="t1"))
    assert layer.state_of(txn) is State.ACCEPTED
    assert layer.resting == 1  # decision 0024: nothing live, only its key and deadline
    assert layer.receive_repeat(txn, UDP) == []
    assert layer.resting == 1
    assert len(layer) == 1
    # Its Timer L still ends it on time (64*T1), and then a repeat has nothing to find.
    assert kinds([action for _, action in run_until(layer, clock, 40.0)]) == ["Terminated"]
    assert layer.state_of(txn) is None
    assert layer.receive_repeat(txn, UDP) is None


def test_a_repeat_for_a_transaction_never_started_is_none() -> None:
    layer, _, _, _ = serve()
    other = server_transaction_id(request("INVITE", branch="z9hG4bKnever"))
    assert layer.receive_repeat(other, Peer("UDP", "192.0.2.99", 5060)) is None
    assert len(layer) == 1
