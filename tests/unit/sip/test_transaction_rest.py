"""Transactions at rest (decision 0024): kept as text, bytes and numbers, brought back
when named again, and ended on time however often that happens."""

import gc

import pytest

from telportal.sip import make_response
from telportal.sip.transaction import (
    Deliver,
    State,
    Terminated,
    TransactionStateError,
    TransportError,
    make_ack,
    server_transaction_id,
)
from telportal.sip.transaction_rest import AddressBook, RestingTransactions
from tests.unit.sip.test_transaction_helpers import (
    QUIET,
    UDP,
    Peer,
    new_layer,
    only,
    request,
    respond,
    run_until,
    serve,
)

OLD_VIA = "SIP/2.0/UDP 192.0.2.10:5060"  # RFC 2543: no branch


# -- the table ------------------------------------------------------------------------


def test_keys_expire_by_deadline_across_kinds_and_give_back_what_they_rested_with() -> None:
    rest: RestingTransactions[Peer] = RestingTransactions(3)
    rest.put("a", 0, False, UDP, b"first", 32.0)
    rest.put("b", 1, True, UDP, b"", 5.0)
    rest.put("c", 0, False, UDP, b"third", 33.0)
    assert (len(rest), rest.next_deadline(), rest.kind_of("b"), rest.kind_of("z")) == (
        3,
        5.0,
        1,
        -1,
    )
    assert rest.pop_due(4.9) is None
    assert rest.pop_due(40.0) == ("b", 5.0)
    assert rest.take("c") == (0, False, UDP, b"third", 33.0)
    assert rest.take("c") is None
    assert rest.next_deadline() == 32.0
    assert rest.pop_due(40.0) == ("a", 32.0)
    assert (len(rest), rest.next_deadline(), rest.pop_due(99.0), rest.addresses) == (
        0,
        None,
        None,
        0,
    )


def test_a_key_taken_back_and_resting_anew_is_not_ended_by_its_old_deadline() -> None:
    rest: RestingTransactions[Peer] = RestingTransactions(1)
    rest.put("k", 0, False, UDP, b"", 32.0)
    rest.take("k")
    rest.put("k", 0, False, UDP, b"", 40.0)  # a new transaction with the same id
    assert rest.next_deadline() == 40.0
    assert rest.pop_due(39.0) is None
    assert rest.pop_due(40.0) == ("k", 40.0)


def test_a_key_resting_again_until_the_same_time_ends_once_and_on_time() -> None:
    rest: RestingTransactions[Peer] = RestingTransactions(1)
    rest.put("k", 0, False, UDP, b"", 32.0)
    rest.put("later", 0, False, UDP, b"", 33.0)
    rest.take("k")
    rest.put("k", 0, False, UDP, b"", 32.0)  # queued again, behind "later"
    assert rest.pop_due(50.0) == ("k", 32.0)
    assert rest.pop_due(50.0) == ("later", 33.0)
    assert rest.pop_due(50.0) is None  # the second entry of "k" is stale
    assert len(rest) == 0


def test_a_key_whose_first_entry_went_stale_still_ends() -> None:
    rest: RestingTransactions[Peer] = RestingTransactions(1)
    rest.put("k", 0, False, UDP, b"", 32.0)
    rest.take("k")
    assert rest.next_deadline() is None  # its entry dropped while it was taken back
    rest.put("k", 0, False, UDP, b"", 32.0)
    assert rest.pop_due(32.0) == ("k", 32.0)


def test_the_table_holds_nothing_the_collector_tracks_per_key() -> None:
    rest: RestingTransactions[Peer] = RestingTransactions(6)
    for number in range(1000):
        rest.put(f"s\nINVITE\nz9hG4bK{number}\nh:5060", number % 6, False, UDP, b"x" * 300, 1.0)
    for name in ("_meta", "_data", "_until"):
        assert not gc.is_tracked(getattr(rest, name)), name
    # The queues are containers (always tracked), but of text and numbers.
    assert all(not gc.is_tracked(key) for queue in rest._keys for key in queue)


def test_kinds_must_fit_the_meta_number() -> None:
    with pytest.raises(ValueError, match="between 1 and 8 kinds"):
        RestingTransactions(9)


def test_address_book_shares_a_slot_per_object_and_frees_it_with_its_last_user() -> None:
    book: AddressBook[Peer] = AddressBook()
    twin = Peer("UDP", "192.0.2.10", 5060)  # equal to UDP, another object
    first = book.hold(UDP)
    assert book.hold(UDP) == first
    other = book.hold(twin)
    assert other != first
    assert len(book) == 2
    assert book.release(first) is UDP
    assert len(book) == 2
    assert book.release(first) is UDP
    assert book.release(other) is twin
    assert len(book) == 0
    assert book.hold(twin) in (first, other)  # a freed slot is used again


# -- the layer ------------------------------------------------------------------------


def test_an_rfc2543_invite_rests_is_acked_by_its_2xx_tag_and_ends_with_its_own_id() -> None:
    layer, clock = new_layer(QUIET)
    invite = request("INVITE", via=OLD_VIA)
    (delivered,) = only(layer.receive(invite, UDP, UDP.reliable), Deliver)
    txn = delivered.transaction
    assert " " in txn.branch  # the RFC 2543 key, with spaces, becomes text and back
    ok = make_response(invite, 200, to_tag="t2")
    layer.send_response(txn, ok)
    assert (layer.resting, layer.state_of(txn)) == (1, State.ACCEPTED)
    ack = request("ACK", via=OLD_VIA, to_tag="t2")
    assert layer.receive(ack, UDP, UDP.reliable) == [Deliver(ack, txn, UDP)]
    assert layer.resting == 1
    assert run_until(layer, clock, 40.0) == [(32.0, Terminated(txn))]


def test_a_transport_error_ends_a_resting_transaction_and_a_new_one_keeps_its_time() -> None:
    layer, clock, txn, options = serve("OPTIONS")
    layer.send_response(txn, make_response(options, 200, to_tag="t"))
    assert layer.resting == 1
    assert layer.transport_error(txn) == [TransportError(txn), Terminated(txn)]
    assert (len(layer), layer.next_deadline()) == (0, None)
    clock.advance(10.0)
    layer.receive(options, UDP, UDP.reliable)  # the same id again: a new transaction
    layer.send_response(txn, make_response(options, 200, to_tag="t"))
    assert layer.next_deadline() == 42.0  # Timer J from now, not from the first one
    assert run_until(layer, clock, 50.0) == [(42.0, Terminated(txn))]


def test_naming_a_resting_transaction_for_nothing_leaves_it_resting_on_time() -> None:
    layer, clock = new_layer(QUIET)
    invite = request("INVITE")
    txn, _ = layer.send_request(invite, UDP)
    layer.receive(respond(invite, 486), UDP, UDP.reliable)  # Completed: Timer D
    clock.advance(0.5)
    options = request("OPTIONS")
    options_txn = server_transaction_id(options)
    layer.receive(options, UDP, UDP.reliable)
    layer.send_response(options_txn, make_response(options, 200, to_tag="t"))
    assert (layer.resting, layer.next_deadline()) == (2, 32.0)
    clock.advance(0.5)
    assert layer.cancel(txn) == []  # a final response came: nothing to cancel
    with pytest.raises(TransactionStateError):
        layer.send_response(options_txn, make_response(options, 404, to_tag="t"))
    with pytest.raises(ValueError, match="only an INVITE client"):
        layer.cancel(options_txn)
    assert (layer.resting, layer.timer_count, layer.timer_heap_size) == (2, 2, 0)
    assert run_until(layer, clock, 40.0) == [
        (32.0, Terminated(txn)),
        (32.5, Terminated(options_txn)),
    ]


def test_a_resting_client_invite_hands_2xx_retransmissions_to_the_tu() -> None:
    layer, clock = new_layer(QUIET)
    invite = request("INVITE")
    txn, _ = layer.send_request(invite, UDP)
    ok = respond(invite, 200)
    layer.receive(ok, UDP, UDP.reliable)
    assert (layer.resting, layer.state_of(txn)) == (1, State.ACCEPTED)
    clock.advance(2.0)
    assert layer.receive(ok, UDP, UDP.reliable) == [Deliver(ok, txn, UDP)]
    assert layer.resting == 1
    assert run_until(layer, clock, 40.0) == [(32.0, Terminated(txn))]


def test_a_late_cancel_finds_the_resting_invite_and_takes_its_2xx_tag() -> None:
    layer, _, txn, invite = serve(branch="z9hG4bKlate")
    layer.send_response(txn, make_response(invite, 200, to_tag="answered"))
    cancel = request("CANCEL", branch="z9hG4bKlate")
    (delivered,) = only(layer.receive(cancel, UDP, UDP.reliable), Deliver)
    assert delivered.cancels == txn
    answer = layer.accept_cancel(delivered.transaction)
    (sent,) = [action.message for action in answer if hasattr(action, "message")]
    assert (sent.status, sent.to.tag) == (200, "answered")
    assert layer.state_of(txn) is State.ACCEPTED  # no 487 after a 2xx
    assert layer.resting == 2  # the INVITE, and the CANCEL's own (Timer J)
    with pytest.raises(TransactionStateError, match="answered already"):
        layer.accept_cancel(delivered.transaction)  # brought back from rest to refuse
    assert (layer.resting, layer.timer_heap_size) == (2, 0)


def test_an_accepted_invite_rests_with_its_to_tag_alone() -> None:
    # Its 2xx (some 800 bytes with SDP) would stay 32 s for a late CANCEL's To tag.
    layer, _, txn, invite = serve()
    layer.send_response(txn, make_response(invite, 200, to_tag="only-this"))
    assert layer.resting == 1
    assert list(layer._rest._data.values()) == [b"only-this"]


def test_an_ack_of_ours_is_resent_from_rest_over_and_over() -> None:
    layer, clock = new_layer(QUIET)
    invite = request("INVITE")
    txn, _ = layer.send_request(invite, UDP)
    busy = respond(invite, 486)
    (ack,) = [
        action.data for action in layer.receive(busy, UDP, UDP.reliable) if hasattr(action, "data")
    ]
    for _ in range(3):
        clock.advance(1.0)
        resent = layer.receive(busy, UDP, UDP.reliable)
        assert [action.data for action in resent if hasattr(action, "data")] == [ack]
    assert make_ack(invite, busy).to_bytes() == ack
    assert run_until(layer, clock, 40.0) == [(32.0, Terminated(txn))]
