"""Dialogs (RFC 3261 12-15, RFC 3311): Alice calls Bob through two record-routing proxies.

Alice (UAC) -> bigbox3.site3.atlanta.example.com -> server10.biloxi.example.com -> Bob (UAS),
as in RFC 3261 section 24.2. `forward` and `back` play the proxies: a request gains
their Vias (and, outside a dialog, their Record-Route) and loses the Route entries
naming them; a response loses their Vias. Every message crosses as bytes.
"""

import random

import pytest

from telportal.sip import (
    Address,
    Headers,
    Request,
    Response,
    header_key,
    parse_message,
    parse_sip_uri,
)
from telportal.sip.dialog import (
    DEFAULT_MAX_FORWARDS,
    Dialog,
    DialogError,
    DialogId,
    DialogSet,
    DialogState,
    Role,
    glare_retry_delay,
    make_cancel,
    make_via,
    new_tag,
    request_dialog_id,
    response_dialog_id,
)
from telportal.sip.validate import Rejection
from tests.unit.sip.samples import ANSWER, OFFER

ATLANTA = "bigbox3.site3.atlanta.example.com"
BILOXI = "server10.biloxi.example.com"
TO_BOB = (ATLANTA, BILOXI)
TO_ALICE = (BILOXI, ATLANTA)
# The route set each side keeps: the UAC reverses the Record-Route, the UAS does not.
ALICE_ROUTES = [f"sip:{ATLANTA};lr", f"sip:{BILOXI};lr"]
BOB_ROUTES = [f"sip:{BILOXI};lr", f"sip:{ATLANTA};lr"]
CALL_ID = "a84b4c76e66710@pc33.atlanta.example.com"
ALICE_TAG = "1928301774"
BOB_TAG = "a6c85cf"
ALICE_CONTACT = "sip:alice@pc33.atlanta.example.com"
BOB_CONTACT = "<sip:bob@192.0.2.4>"
HOLD = OFFER.replace(b"a=rtpmap:0 PCMU/8000\r\n", b"a=rtpmap:0 PCMU/8000\r\na=sendonly\r\n")


def parse_request(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def parse_response(data: bytes) -> Response:
    message = parse_message(data)
    assert isinstance(message, Response)
    return message


def alice_invite(*, body: bytes = OFFER, cseq: int = 314159) -> Request:
    lines = [
        "INVITE sip:bob@biloxi.example.com SIP/2.0",
        "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8;rport",
        "Max-Forwards: 70",
        "To: Bob <sip:bob@biloxi.example.com>",
        f"From: Alice <sip:alice@atlanta.example.com>;tag={ALICE_TAG}",
        f"Call-ID: {CALL_ID}",
        f"CSeq: {cseq} INVITE",
        f"Contact: <{ALICE_CONTACT}>",
        "Supported: timer",
        "Content-Type: application/sdp",
    ]
    return parse_request(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


def forward(request: Request, hops: tuple[str, ...]) -> Request:
    """The request as it leaves the last of hops, each a loose-routing proxy."""
    for number, hop in enumerate(hops):
        routes = request.headers.get_all("Route")
        if routes and hop in routes[0]:
            routes = routes[1:]
        headers = Headers([("Via", f"SIP/2.0/UDP {hop};branch=z9hG4bK{number}{hop[:6]}")])
        if request.to.tag is None:
            headers.add("Record-Route", f"<sip:{hop};lr>")
        for name, value in request.headers:
            if header_key(name) == "max-forwards":
                headers.add(name, str(int(value) - 1))
            elif header_key(name) != "route":
                headers.add(name, value)
        for route in routes:
            headers.add("Route", route)
        request = Request(request.method, request.uri, headers, request.body)
    return parse_request(bytes(request))


def back(response: Response, hops: tuple[str, ...]) -> Response:
    """The response as it leaves the proxies: each removes its own Via."""
    headers = Headers()
    dropped = 0
    for name, value in response.headers:
        if header_key(name) == "via" and dropped < len(hops):
            dropped += 1
            continue
        headers.add(name, value)
    return parse_response(bytes(Response(response.status, response.reason, headers, response.body)))


def routes_of(request: Request) -> list[str]:
    return [str(route.uri) for route in request.routes]


def established() -> tuple[Dialog, Dialog]:
    """Alice's and Bob's dialogs after INVITE, 200 and ACK."""
    invite = alice_invite()
    at_bob = forward(invite, TO_BOB)
    bob = Dialog.from_uas(at_bob, BOB_TAG, BOB_CONTACT, rng=random.Random(2))
    ok = back(bob.respond(at_bob, 200, body=ANSWER), TO_ALICE)
    alice = Dialog.from_uac(invite, ok, rng=random.Random(1))
    assert bob.receive_request(forward(alice.ack(ok), TO_BOB)) is None
    return alice, bob


# -- creation ---------------------------------------------------------------------------


def test_uac_early_dialog_from_180_with_to_tag() -> None:
    invite = alice_invite()
    at_bob = forward(invite, TO_BOB)
    bob = Dialog.from_uas(at_bob, BOB_TAG, BOB_CONTACT)
    ringing = back(bob.respond(at_bob, 180), TO_ALICE)

    alice = Dialog.from_uac(invite, ringing)

    assert alice.state is DialogState.EARLY
    assert alice.role is Role.UAC
    assert alice.owns_call_id
    assert alice.id == DialogId(CALL_ID, ALICE_TAG, BOB_TAG)
    assert alice.local_seq == 314159
    assert alice.remote_seq is None
    assert str(alice.local_uri) == "sip:alice@atlanta.example.com"
    assert str(alice.remote_uri) == "sip:bob@biloxi.example.com"
    assert str(alice.remote_target) == "sip:bob@192.0.2.4"
    assert str(alice.local_contact) == f"<{ALICE_CONTACT}>"
    assert not alice.secure
    assert alice.invite_pending  # the initial INVITE is still in progress


def test_uac_confirmed_dialog_from_200() -> None:
    alice, _ = established()
    assert alice.state is DialogState.CONFIRMED
    assert not alice.invite_pending


def test_uas_dialog_from_received_invite() -> None:
    at_bob = forward(alice_invite(), TO_BOB)
    tag = new_tag(random.Random(5))

    bob = Dialog.from_uas(at_bob, tag, BOB_CONTACT)

    assert bob.state is DialogState.EARLY
    assert bob.role is Role.UAS
    assert not bob.owns_call_id
    assert bob.id == DialogId(CALL_ID, tag, ALICE_TAG)
    assert bob.remote_seq == 314159
    assert bob.local_seq is None
    assert str(bob.remote_target) == ALICE_CONTACT
    assert str(bob.local) == f'"Bob" <sip:bob@biloxi.example.com>;tag={tag}'
    assert str(bob.remote) == f'"Alice" <sip:alice@atlanta.example.com>;tag={ALICE_TAG}'


def test_uas_responses_carry_tag_record_route_and_contact_and_confirm() -> None:
    at_bob = forward(alice_invite(), TO_BOB)
    bob = Dialog.from_uas(at_bob, BOB_TAG, BOB_CONTACT)

    trying = bob.respond(at_bob, 100)
    assert trying.to.tag is None
    assert "Record-Route" not in trying.headers
    ringing = bob.respond(at_bob, 180)
    assert ringing.to.tag == BOB_TAG
    assert [str(rr.uri) for rr in ringing.record_routes] == BOB_ROUTES  # copied (12.1.1)
    assert [str(c) for c in ringing.contacts] == [BOB_CONTACT]
    assert bob.state is DialogState.EARLY

    ok = bob.respond(at_bob, 200, body=ANSWER)
    assert ok.body == ANSWER
    assert ok.content_type == "application/sdp"
    assert bob.state is DialogState.CONFIRMED
    assert bob.awaiting_ack


def test_uas_non_2xx_final_ends_the_early_dialog() -> None:
    at_bob = forward(alice_invite(), TO_BOB)
    bob = Dialog.from_uas(at_bob, BOB_TAG, BOB_CONTACT)
    bob.respond(at_bob, 180)
    busy = bob.respond(at_bob, 486)
    assert busy.to.tag == BOB_TAG
    assert bob.state is DialogState.TERMINATED


def test_uac_non_2xx_final_ends_the_early_dialog() -> None:
    invite = alice_invite()
    at_bob = forward(invite, TO_BOB)
    bob = Dialog.from_uas(at_bob, BOB_TAG, BOB_CONTACT)
    alice = Dialog.from_uac(invite, back(bob.respond(at_bob, 180), TO_ALICE))
    alice.receive_response(back(bob.respond(at_bob, 603), TO_ALICE))
    assert alice.state is DialogState.TERMINATED


def test_responses_without_to_tag_create_no_dialog() -> None:
    invite = alice_invite()
    at_bob = forward(invite, TO_BOB)
    trying = back(Dialog.from_uas(at_bob, BOB_TAG, BOB_CONTACT).respond(at_bob, 100), TO_ALICE)
    with pytest.raises(DialogError):
        Dialog.from_uac(invite, trying)
    dialogs = DialogSet()
    assert dialogs.receive_response(invite, trying) is None
    assert len(dialogs) == 0
    assert response_dialog_id(trying) is None
    assert request_dialog_id(invite) is None


def test_forking_gives_one_early_dialog_per_to_tag() -> None:
    invite = alice_invite()
    at_bob = forward(invite, TO_BOB)
    desk = Dialog.from_uas(at_bob, "desk", "<sip:bob@192.0.2.4>")
    mobile = Dialog.from_uas(at_bob, "mobile", "<sip:bob@198.51.100.7>")
    dialogs = DialogSet(rng=random.Random(3))

    first = dialogs.receive_response(invite, back(desk.respond(at_bob, 180), TO_ALICE))
    second = dialogs.receive_response(invite, back(mobile.respond(at_bob, 183), TO_ALICE))
    again = dialogs.receive_response(invite, back(desk.respond(at_bob, 180), TO_ALICE))

    assert first is not None
    assert second is not None
    assert again is first
    assert first is not second
    assert {first.id.remote_tag, second.id.remote_tag} == {"desk", "mobile"}
    assert str(first.remote_target) == "sip:bob@192.0.2.4"
    assert str(second.remote_target) == "sip:bob@198.51.100.7"
    assert dialogs.forks(CALL_ID, ALICE_TAG) == [first, second]
    assert all(d.state is DialogState.EARLY for d in dialogs)

    answered = dialogs.receive_response(invite, back(mobile.respond(at_bob, 200), TO_ALICE))
    assert answered is second
    assert second.state is DialogState.CONFIRMED
    assert first.state is DialogState.EARLY  # may still answer too (13.2.2.4)


def test_a_failure_ends_every_early_fork() -> None:
    invite = alice_invite()
    at_bob = forward(invite, TO_BOB)
    dialogs = DialogSet()
    for tag in ("one", "two"):
        fork = Dialog.from_uas(at_bob, tag, BOB_CONTACT)
        dialogs.receive_response(invite, back(fork.respond(at_bob, 180), TO_ALICE))
    failure = back(Dialog.from_uas(at_bob, "three", BOB_CONTACT).respond(at_bob, 480), TO_ALICE)

    assert dialogs.receive_response(invite, failure) is None

    assert [d.state for d in dialogs] == [DialogState.TERMINATED] * 2
    assert len(dialogs.prune()) == 2
    assert len(dialogs) == 0


# -- route set and Request-URI ----------------------------------------------------------


def test_route_set_order_on_each_side_with_two_proxies() -> None:
    alice, bob = established()
    assert [str(r.uri) for r in alice.route_set] == ALICE_ROUTES
    assert [str(r.uri) for r in bob.route_set] == BOB_ROUTES

    from_alice = parse_request(bytes(alice.options()))
    assert str(from_alice.uri) == "sip:bob@192.0.2.4"
    assert routes_of(from_alice) == ALICE_ROUTES
    from_bob = parse_request(bytes(bob.options()))
    assert str(from_bob.uri) == ALICE_CONTACT
    assert routes_of(from_bob) == BOB_ROUTES

    # Through the proxies, each pops itself: the far end sees no Route left.
    assert forward(from_alice, TO_BOB).routes == []
    assert bob.receive_request(forward(from_alice, TO_BOB)) is None


def test_the_2xx_recomputes_the_route_set_of_an_early_dialog() -> None:
    invite = alice_invite()
    at_bob = forward(invite, TO_BOB)
    bob = Dialog.from_uas(at_bob, BOB_TAG, BOB_CONTACT)
    ringing = back(bob.respond(at_bob, 180), TO_ALICE)
    ringing.headers.remove("Record-Route")  # a proxy that stopped record-routing
    ringing.headers.remove("Contact")
    alice = Dialog.from_uac(invite, ringing)
    assert alice.route_set == ()
    assert str(alice.remote_target) == "sip:bob@biloxi.example.com"  # until a Contact

    alice.receive_response(back(bob.respond(at_bob, 200, body=ANSWER), TO_ALICE))

    assert alice.state is DialogState.CONFIRMED
    assert [str(r.uri) for r in alice.route_set] == ALICE_ROUTES
    assert str(alice.remote_target) == "sip:bob@192.0.2.4"


def test_empty_route_set_sends_to_the_remote_target() -> None:
    invite = alice_invite()
    bob = Dialog.from_uas(invite, BOB_TAG, BOB_CONTACT)
    alice = Dialog.from_uac(invite, bob.respond(invite, 200, body=ANSWER))
    bye = alice.bye()
    assert str(bye.uri) == "sip:bob@192.0.2.4"
    assert "Route" not in bye.headers


def test_strict_router_goes_in_the_request_uri() -> None:
    invite = alice_invite()
    bob = Dialog.from_uas(invite, BOB_TAG, BOB_CONTACT)
    ok = bob.respond(invite, 200, body=ANSWER)
    # Record-Route as a response carries it: the RFC 2543 proxy nearest to Alice is last.
    ok.headers.add("Record-Route", f"<sip:{BILOXI};lr>")
    ok.headers.add("Record-Route", "<sip:strict.atlanta.example.com;method=INVITE;maddr=192.0.2.9>")
    alice = Dialog.from_uac(invite, parse_response(bytes(ok)))

    bye = parse_request(bytes(alice.bye()))

    assert str(bye.uri) == "sip:strict.atlanta.example.com;maddr=192.0.2.9"
    assert routes_of(bye) == [f"sip:{BILOXI};lr", "sip:bob@192.0.2.4"]


def test_loose_router_keeps_the_remote_target_in_the_request_uri() -> None:
    alice, _ = established()
    invite = parse_request(bytes(alice.reinvite(HOLD)))
    assert str(invite.uri) == "sip:bob@192.0.2.4"
    assert routes_of(invite)[0] == f"sip:{ATLANTA};lr"


# -- request construction and sequence numbers ------------------------------------------


def test_in_dialog_request_headers() -> None:
    alice, _ = established()
    via = make_via("pc33.atlanta.example.com", "z9hG4bKreinv1")

    invite = parse_request(bytes(alice.reinvite(HOLD, via=via, headers=[("Subject", "hold")])))

    assert invite.method == "INVITE"
    assert invite.top_via.branch == "z9hG4bKreinv1"
    assert invite.top_via.wants_rport
    assert invite.max_forwards == DEFAULT_MAX_FORWARDS
    assert invite.from_.tag == ALICE_TAG
    assert invite.to.tag == BOB_TAG
    assert invite.call_id == CALL_ID
    assert str(invite.cseq) == "314160 INVITE"
    assert [str(c.uri) for c in invite.contacts] == [ALICE_CONTACT]
    assert invite.headers.get("Subject") == "hold"
    assert invite.content_type == "application/sdp"
    assert invite.body == HOLD
    assert next(iter(invite.headers))[0] == "Via"


def test_via_given_as_text_is_checked() -> None:
    alice, _ = established()
    options = alice.options(via="SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bKx")
    assert options.top_via.transport == "TCP"
    assert "Contact" not in options.headers  # OPTIONS is not a target refresh
    with pytest.raises(ValueError, match="Via header"):
        alice.options(via="not a via")


def test_cseq_increments_except_ack_and_cancel() -> None:
    alice, bob = established()
    assert alice.options().cseq.number == 314160
    assert alice.options().cseq.number == 314161
    # Bob's first request starts his own sequence.
    assert str(bob.options().cseq) == "1 OPTIONS"
    assert str(bob.options().cseq) == "2 OPTIONS"

    reinvite = alice.reinvite(HOLD)
    assert reinvite.cseq.number == 314162
    at_bob = forward(reinvite, TO_BOB)
    assert bob.receive_request(at_bob) is None
    ok = back(bob.respond(at_bob, 200, body=ANSWER), TO_ALICE)
    alice.receive_response(ok)
    ack = alice.ack(ok)
    assert str(ack.cseq) == "314162 ACK"
    assert alice.local_seq == 314162
    assert "Contact" not in ack.headers

    with pytest.raises(DialogError, match="ack"):
        alice.request("ACK")
    with pytest.raises(DialogError, match="make_cancel"):
        alice.request("CANCEL")


def test_cancel_copies_the_request_and_takes_no_sequence_number() -> None:
    alice, _ = established()
    reinvite = alice.reinvite(HOLD, via=make_via("pc33.atlanta.example.com", "z9hG4bKre"))
    cancel = parse_request(bytes(make_cancel(reinvite)))
    assert cancel.method == "CANCEL"
    assert cancel.uri == reinvite.uri
    assert str(cancel.cseq) == f"{reinvite.cseq.number} CANCEL"
    assert cancel.top_via.branch == "z9hG4bKre"
    assert routes_of(cancel) == routes_of(reinvite)
    assert cancel.to.tag == BOB_TAG
    assert cancel.body == b""
    assert alice.local_seq == reinvite.cseq.number

    initial = make_cancel(alice_invite())
    assert str(initial.cseq) == "314159 CANCEL"
    assert initial.to.tag is None


def test_out_of_order_request_is_answered_500() -> None:
    alice, bob = established()
    first = forward(alice.options(), TO_BOB)
    second = forward(alice.options(), TO_BOB)
    assert bob.receive_request(second) is None
    assert bob.remote_seq == 314161

    verdict = bob.receive_request(first)

    assert isinstance(verdict, Rejection)
    assert (verdict.status, verdict.reason) == (500, "Server Internal Error")
    assert "314160" in verdict.detail
    assert bob.remote_seq == 314161
    response = bob.respond(first, verdict.status, verdict.reason, headers=verdict.headers)
    assert response.status == 500
    assert str(response.cseq) == "314160 OPTIONS"


def test_sequence_gaps_are_not_errors_and_a_late_ack_is_accepted() -> None:
    invite = alice_invite()
    at_bob = forward(invite, TO_BOB)
    bob = Dialog.from_uas(at_bob, BOB_TAG, BOB_CONTACT)
    ok = back(bob.respond(at_bob, 200, body=ANSWER), TO_ALICE)
    alice = Dialog.from_uac(invite, ok)
    alice.options()
    alice.options()
    assert bob.receive_request(forward(alice.options(), TO_BOB)) is None
    assert bob.remote_seq == 314162
    assert bob.awaiting_ack

    # The ACK carries the INVITE's lower number, overtaken on the way; never refused.
    ack = forward(alice.ack(ok), TO_BOB)
    assert str(ack.cseq) == "314159 ACK"
    assert bob.receive_request(ack) is None
    assert not bob.awaiting_ack
    assert bob.remote_seq == 314162


# -- target refresh ---------------------------------------------------------------------


def test_reinvite_refreshes_the_remote_target_when_answered_2xx() -> None:
    alice, bob = established()
    alice.local_contact = Address(parse_sip_uri("sip:alice@192.0.2.101:5070"))
    reinvite = forward(alice.reinvite(HOLD), TO_BOB)

    assert bob.receive_request(reinvite) is None
    assert str(bob.remote_target) == ALICE_CONTACT  # not before the 2xx (RFC 6141)
    ok = bob.respond(reinvite, 200, body=ANSWER)

    assert str(bob.remote_target) == "sip:alice@192.0.2.101:5070"
    assert [str(c) for c in ok.contacts] == [BOB_CONTACT]
    assert str(bob.bye().uri) == "sip:alice@192.0.2.101:5070"


def test_a_refused_refresh_keeps_the_old_target() -> None:
    alice, bob = established()
    alice.local_contact = Address(parse_sip_uri("sip:alice@192.0.2.101"))
    update = forward(alice.update(HOLD), TO_BOB)
    assert bob.receive_request(update) is None
    alice.receive_response(back(bob.respond(update, 488), TO_ALICE))
    assert str(bob.remote_target) == ALICE_CONTACT
    # ... and the refused offer is no longer outstanding on either side.
    assert bob.receive_request(forward(alice.update(HOLD), TO_BOB)) is None


def test_2xx_to_our_refresh_updates_the_target() -> None:
    alice, bob = established()
    bob.local_contact = Address(parse_sip_uri("sip:bob@203.0.113.5"))
    reinvite = forward(alice.reinvite(), TO_BOB)  # no body: Bob offers in his 2xx
    assert bob.receive_request(reinvite) is None
    ok = back(bob.respond(reinvite, 200, body=OFFER), TO_ALICE)

    alice.receive_response(ok)

    assert str(alice.remote_target) == "sip:bob@203.0.113.5"
    ack = alice.ack(ok, body=ANSWER)
    assert str(ack.uri) == "sip:bob@203.0.113.5"
    assert ack.body == ANSWER


# -- ending the dialog ------------------------------------------------------------------


@pytest.mark.parametrize("caller_hangs_up", [True, False])
def test_bye_from_either_side_terminates_both(caller_hangs_up: bool) -> None:
    alice, bob = established()
    sender, receiver, path = (alice, bob, TO_BOB) if caller_hangs_up else (bob, alice, TO_ALICE)

    bye = forward(sender.bye(), path)

    assert sender.state is DialogState.TERMINATED
    assert receiver.receive_request(bye) is None
    assert receiver.state is DialogState.TERMINATED
    assert receiver.respond(bye, 200).status == 200
    with pytest.raises(DialogError, match="terminated"):
        sender.options()
    # A request after the BYE finds no dialog.
    late = receiver.receive_request(bye)
    assert isinstance(late, Rejection)
    assert late.status == 481


def test_uas_may_not_bye_an_early_dialog() -> None:
    bob = Dialog.from_uas(forward(alice_invite(), TO_BOB), BOB_TAG, BOB_CONTACT)
    with pytest.raises(DialogError, match="early"):
        bob.bye()


def test_caller_may_bye_an_early_dialog() -> None:
    invite = alice_invite()
    at_bob = forward(invite, TO_BOB)
    bob = Dialog.from_uas(at_bob, BOB_TAG, BOB_CONTACT)
    alice = Dialog.from_uac(invite, back(bob.respond(at_bob, 180), TO_ALICE))
    bye = forward(alice.bye(), TO_BOB)
    assert bob.receive_request(bye) is None
    assert bob.state is DialogState.TERMINATED


@pytest.mark.parametrize("status", [408, 481])
def test_408_or_481_to_a_request_ends_the_dialog(status: int) -> None:
    alice, bob = established()
    options = forward(alice.options(), TO_BOB)
    alice.receive_response(back(bob.respond(options, status), TO_ALICE))
    assert alice.state is DialogState.TERMINATED


# -- glare ------------------------------------------------------------------------------


def test_reinvite_glare_is_answered_491_on_both_sides() -> None:
    alice, bob = established()
    from_alice = forward(alice.reinvite(HOLD), TO_BOB)
    from_bob = forward(bob.reinvite(HOLD), TO_ALICE)

    at_bob = bob.receive_request(from_alice)
    at_alice = alice.receive_request(from_bob)

    assert isinstance(at_bob, Rejection)
    assert isinstance(at_alice, Rejection)
    assert (at_bob.status, at_alice.status) == (491, 491)
    alice.receive_response(back(bob.respond(from_alice, 491), TO_ALICE))
    bob.receive_response(back(alice.respond(from_bob, 491), TO_BOB))
    assert not alice.invite_pending
    assert not bob.invite_pending
    assert 2.1 <= alice.glare_retry_delay() <= 4.0
    assert 0.0 <= bob.glare_retry_delay() <= 2.0
    assert alice.reinvite(HOLD).method == "INVITE"  # the retry may go


def test_glare_retry_ranges_with_a_seeded_random_source() -> None:
    rng = random.Random(4028)
    owner = [glare_retry_delay(True, rng) for _ in range(2000)]
    other = [glare_retry_delay(False, rng) for _ in range(2000)]

    assert min(owner) == 2.1
    assert max(owner) == 4.0
    assert min(other) == 0.0
    assert max(other) == 2.0
    # 10 ms steps
    assert all(round(d * 100) == pytest.approx(d * 100) for d in owner + other)
    assert [glare_retry_delay(True, random.Random(7)) for _ in range(3)] == [
        glare_retry_delay(True, random.Random(7))
    ] * 3


def test_an_invite_while_one_is_being_answered_gets_500_with_retry_after() -> None:
    invite = alice_invite()
    at_bob = forward(invite, TO_BOB)
    bob = Dialog.from_uas(at_bob, BOB_TAG, BOB_CONTACT, rng=random.Random(9))
    alice = Dialog.from_uac(invite, back(bob.respond(at_bob, 180), TO_ALICE))
    # A misbehaving caller re-INVITEs the early dialog: build it by hand.
    second = forward(alice_invite(cseq=314160), TO_BOB)
    second.headers.set("To", f"Bob <sip:bob@biloxi.example.com>;tag={BOB_TAG}")
    assert alice.state is DialogState.EARLY

    verdict = bob.receive_request(second)

    assert isinstance(verdict, Rejection)
    assert verdict.status == 500
    assert [name for name, _ in verdict.headers] == ["Retry-After"]
    assert 0 <= int(verdict.headers[0][1]) <= 10


def test_no_second_invite_while_one_is_pending() -> None:
    alice, _ = established()
    alice.reinvite(HOLD)
    with pytest.raises(DialogError, match="in progress"):
        alice.reinvite()
    with pytest.raises(DialogError, match="offer"):
        alice.update(HOLD)
    assert alice.update().method == "UPDATE"  # a bodiless UPDATE only refreshes
    # Bob's side: until his 2xx is acknowledged he cannot re-INVITE either.
    invite = forward(alice_invite(), TO_BOB)
    fresh = Dialog.from_uas(invite, "x", BOB_CONTACT)
    fresh.respond(invite, 200)
    assert fresh.awaiting_ack
    with pytest.raises(DialogError):
        fresh.reinvite()


def test_update_glare_in_an_early_dialog() -> None:
    invite = alice_invite(body=b"")
    at_bob = forward(invite, TO_BOB)
    bob = Dialog.from_uas(at_bob, BOB_TAG, BOB_CONTACT)
    alice = Dialog.from_uac(invite, back(bob.respond(at_bob, 183), TO_ALICE))
    from_alice = forward(alice.update(OFFER), TO_BOB)
    from_bob = forward(bob.update(HOLD), TO_ALICE)

    assert getattr(bob.receive_request(from_alice), "status", None) == 491
    assert getattr(alice.receive_request(from_bob), "status", None) == 491


def test_hold_and_resume_by_reinvite() -> None:
    alice, bob = established()
    for offer, answer in (
        (HOLD, ANSWER.replace(b"PCMU/8000\r\n", b"PCMU/8000\r\na=recvonly\r\n")),
        (OFFER, ANSWER),
    ):
        reinvite = forward(alice.reinvite(offer), TO_BOB)
        assert reinvite.body == offer
        assert bob.receive_request(reinvite) is None
        ok = back(bob.respond(reinvite, 200, body=answer), TO_ALICE)
        assert ok.body == answer
        alice.receive_response(ok)
        assert bob.receive_request(forward(alice.ack(ok), TO_BOB)) is None
        assert not alice.invite_pending
        assert not bob.invite_pending
    assert alice.local_seq == 314161
    assert bob.remote_seq == 314161


def test_a_reliable_provisional_answer_completes_the_offer() -> None:
    invite = alice_invite()
    at_bob = forward(invite, TO_BOB)
    bob = Dialog.from_uas(at_bob, BOB_TAG, BOB_CONTACT)
    progress = bob.respond(at_bob, 183, body=ANSWER, headers=[("Require", "100rel"), ("RSeq", "1")])
    alice = Dialog.from_uac(invite, back(progress, TO_ALICE))

    # Offer and answer are done: either side may now offer again with UPDATE (RFC 3311).
    update = forward(alice.update(HOLD), TO_BOB)
    assert bob.receive_request(update) is None
    assert bob.respond(update, 200, body=ANSWER).status == 200


# -- the registry -----------------------------------------------------------------------


def test_dialog_set_matches_requests_and_responses_both_ways() -> None:
    alice, bob = established()
    at_alice, at_bob = DialogSet(), DialogSet()
    at_alice.add(alice)
    at_bob.add(bob)

    options = forward(alice.options(), TO_BOB)
    assert request_dialog_id(options) == bob.id == alice.id.reversed()
    assert at_bob.match_request(options) is bob
    assert at_alice.match_request(options) is None
    ok = back(bob.respond(options, 200), TO_ALICE)
    assert response_dialog_id(ok) == alice.id
    assert at_alice.match_response(ok) is alice
    assert at_bob.match_response(ok) is None

    assert alice in at_alice
    assert alice.id in at_alice
    assert at_alice.get(alice.id) is alice
    with pytest.raises(DialogError, match="already"):
        at_alice.add(alice)
    at_alice.remove(alice)
    assert alice not in at_alice


def test_messages_of_another_dialog_are_refused() -> None:
    alice, bob = established()
    stranger = forward(alice.options(), TO_BOB)
    stranger.headers.set("Call-ID", "another-call")
    with pytest.raises(DialogError, match="does not belong"):
        bob.receive_request(stranger)
    ok = back(bob.respond(forward(alice.options(), TO_BOB), 200), TO_ALICE)
    ok.headers.set("Call-ID", "another-call")
    with pytest.raises(DialogError, match="does not belong"):
        alice.receive_response(ok)


def test_tags_are_random_and_injectable() -> None:
    assert new_tag(random.Random(1)) == new_tag(random.Random(1))
    assert len(new_tag()) == 16
    assert new_tag() != new_tag()


def test_secure_flag_follows_a_sips_request_uri() -> None:
    invite = alice_invite()
    invite.uri = parse_sip_uri("sips:bob@biloxi.example.com")
    bob = Dialog.from_uas(invite, BOB_TAG, "<sips:bob@192.0.2.4>")
    assert bob.secure
    alice = Dialog.from_uac(invite, bob.respond(invite, 200))
    assert alice.secure
