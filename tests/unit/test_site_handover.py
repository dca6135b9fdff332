from decimal import Decimal

from telportal.signaling.site_handover import VARS, handed_over, handover_headers
from telportal.sip import Headers, Request, parse_uri


def _invite(headers: tuple[tuple[str, str], ...]) -> Request:
    h = Headers()
    for name, value in headers:
        h.add(name, value)
    return Request("INVITE", parse_uri("sip:4008001000@127.0.0.1"), h, b"")


def test_variables_travel_with_their_types() -> None:
    sent = {"account": "A-42", "amount": Decimal("12.50"), "vip": True, "unset": None}
    request = _invite(handover_headers("east", "call-1", sent))
    site, carried = handed_over(request, "site:east")
    assert site == "east"
    assert carried == {"account": "A-42", "amount": Decimal("12.50"), "vip": True}


def test_only_a_peer_site_is_believed() -> None:
    request = _invite(handover_headers("east", "call-1", {"account": "A-42"}))
    assert handed_over(request, None) == ("", {})  # a phone
    assert handed_over(request, "carrier") == ("", {})  # a trunk
    assert handed_over(request, "site:west") == ("", {})  # a site naming another


def test_garbage_is_ignored() -> None:
    headers = (("X-Telportal-Handover", "site=east;call=1"), (VARS, "!!not base64 json!!"))
    assert handed_over(_invite(headers), "site:east") == ("east", {})
    nan = handover_headers("east", "c", {})[0], (VARS, "eyJ4Ijp7Im51bWJlciI6Ik5hTiJ9fQ==")
    assert handed_over(_invite(nan), "site:east") == ("east", {})  # {"x": {"number": "NaN"}}


def test_too_much_is_cut_to_what_fits() -> None:
    request = _invite(handover_headers("east", "c", {"big": "x" * 5000, "small": "ok"}))
    value = request.headers.get(VARS)
    assert value is not None and len(value) <= 2000
    assert handed_over(request, "site:east")[1] == {"small": "ok"}
