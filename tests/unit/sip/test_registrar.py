"""REGISTER rules (RFC 3261 10.3) and the location service, on a fake clock."""

from telportal.clock import FakeClock
from telportal.sip import parse_message
from telportal.sip.location import LocationService
from telportal.sip.message import Request
from telportal.sip.registrar import RegistrarPolicy, process_register

AOR = "tenant-1/1001"


def register(
    *contacts: str, expires: int | None = None, call_id: str = "reg-1", cseq: int = 1
) -> Request:
    lines = [
        "REGISTER sip:acme SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1;rport",
        "Max-Forwards: 70",
        "From: <sip:1001@acme>;tag=a1",
        "To: <sip:1001@acme>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
        "User-Agent: TestPhone/1.0",
    ]
    lines += [f"Contact: {c}" for c in contacts]
    if expires is not None:
        lines.append(f"Expires: {expires}")
    msg = parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


def test_register_refresh_and_expire() -> None:
    clock = FakeClock()
    loc: LocationService[str] = LocationService(clock)
    r = process_register(register("<sip:1001@192.0.2.10:5060>"), AOR, loc, clock, peer="udp:a")
    assert (r.status, r.reason) == (200, "OK")
    assert ("Contact", "<sip:1001@192.0.2.10:5060>;expires=3600") in r.headers
    assert any(name == "Date" and value.endswith("GMT") for name, value in r.headers)
    assert [e.change for e in r.events] == ["added"]
    assert r.events[0].aor_reachable
    binding = loc.lookup(AOR)[0]
    assert binding.peer == "udp:a" and binding.user_agent == "TestPhone/1.0"

    clock.advance(1800)
    r = process_register(
        register("<sip:1001@192.0.2.10:5060>", expires=600, cseq=2), AOR, loc, clock
    )
    assert r.status == 200 and [e.change for e in r.events] == ["refreshed"]
    clock.advance(599)
    assert loc.expire() == [] and len(loc) == 1
    clock.advance(2)
    expired = loc.expire()
    assert [e.change for e in expired] == ["expired"] and not expired[0].aor_reachable
    assert loc.lookup(AOR) == [] and len(loc) == 0


def test_multiple_contacts_q_order_and_unregister_one() -> None:
    clock = FakeClock()
    loc: LocationService[str] = LocationService(clock)
    r = process_register(
        register("<sip:1001@10.0.0.1>;q=0.5", "<sip:1001@10.0.0.2>;q=0.9;expires=120"),
        AOR,
        loc,
        clock,
    )
    assert r.status == 200
    assert [b.contact for b in loc.lookup(AOR)] == ["sip:1001@10.0.0.2", "sip:1001@10.0.0.1"]
    assert loc.lookup(AOR)[0].expires_in(clock.monotonic()) == 120
    r = process_register(register("<sip:1001@10.0.0.2>;expires=0", cseq=2), AOR, loc, clock)
    assert r.status == 200 and [e.change for e in r.events] == ["removed"]
    assert [b.contact for b in loc.lookup(AOR)] == ["sip:1001@10.0.0.1"]


def test_star_removes_all_only_with_expires_zero() -> None:
    clock = FakeClock()
    loc: LocationService[str] = LocationService(clock)
    process_register(register("<sip:1001@10.0.0.1>", "<sip:1001@10.0.0.2>"), AOR, loc, clock)
    assert process_register(register("*", expires=60, cseq=2), AOR, loc, clock).status == 400
    assert len(loc) == 2
    r = process_register(register("*", expires=0, cseq=3), AOR, loc, clock)
    assert r.status == 200 and len(r.events) == 2 and len(loc) == 0
    assert [h for h in r.headers if h[0] == "Contact"] == []


def test_too_brief_clamped_out_of_order_and_too_many() -> None:
    clock = FakeClock()
    loc: LocationService[str] = LocationService(clock)
    policy = RegistrarPolicy(min_expires=60, max_expires=3600, max_bindings=2)
    r = process_register(register("<sip:a@h>", expires=30), AOR, loc, clock, policy=policy)
    assert (r.status, r.headers) == (423, [("Min-Expires", "60")]) and len(loc) == 0
    r = process_register(
        register("<sip:a@h>", expires=99999, cseq=2), AOR, loc, clock, policy=policy
    )
    assert r.status == 200 and loc.lookup(AOR)[0].expires_in(clock.monotonic()) == 3600
    r = process_register(register("<sip:a@h>", cseq=2), AOR, loc, clock, policy=policy)
    assert (r.status, r.reason) == (500, "Out of order CSeq for this Call-ID")
    r = process_register(register("<sip:b@h>", "<sip:c@h>", cseq=3), AOR, loc, clock, policy=policy)
    assert r.status == 403 and len(loc) == 1  # all or nothing


def test_bad_contact_parameters_are_400() -> None:
    clock = FakeClock()
    loc: LocationService[str] = LocationService(clock)
    for contact in ("<sip:a@h>;expires=soon", "<sip:a@h>;q=2", "<sip:a@h>;q=x", "not a uri <"):
        r = process_register(register(contact), AOR, loc, clock)
        assert r.status == 400, contact
        assert r.reason
    assert len(loc) == 0


def test_keepalive_up_and_down() -> None:
    clock = FakeClock()
    loc: LocationService[str] = LocationService(clock)
    process_register(register("<sip:1001@10.0.0.1>"), AOR, loc, clock)
    down = loc.set_reachable(AOR, "sip:1001@10.0.0.1", False)
    assert down is not None and down.change == "down" and not down.aor_reachable
    assert not loc.is_reachable(AOR) and len(loc.lookup(AOR)) == 1
    assert loc.set_reachable(AOR, "sip:1001@10.0.0.1", False) is None  # no flip, no event
    up = loc.set_reachable(AOR, "sip:1001@10.0.0.1", True)
    assert up is not None and up.change == "up" and up.aor_reachable
