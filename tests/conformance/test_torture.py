"""Replays the RFC 4475 (SIP torture) and RFC 5118 (IPv6 torture) messages and holds the
message layer to the verdict `verdicts.tsv` gives for each, as a UDP server would meet it.

    valid     must parse, pass the mandatory-header checks and not be refused for syntax
    invalid   must be answered with 400 (or the code the note names) or dropped "(drop)"
    semantic  must parse and be refused with the code the note names
    either    any outcome but a crash
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from telportal.sip import (
    STAR,
    Accept,
    Drop,
    Reject,
    Request,
    Response,
    SipParseError,
    SipUri,
    check_mandatory,
    parse_message,
    screen_datagram,
    unescape,
)

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "sip-conformance"
VERDICTS = CORPUS / "verdicts.tsv"
SUITES = ("rfc4475", "rfc5118")
KINDS = frozenset({"valid", "invalid", "semantic", "either"})


def test_the_conformance_messages_are_there() -> None:
    # A missing corpus fails here (and every test below finds no cases to pass),
    # never a silent skip: the corpus lives in ../shared beside the repository.
    assert VERDICTS.is_file(), f"SIP conformance messages not found at {CORPUS}"


@dataclass(frozen=True)
class Case:
    path: str
    kind: str
    note: str

    @property
    def codes(self) -> set[int]:
        """Status codes the note asks for; "not 400" excludes one rather than asking for it."""
        return {int(code) for code in re.findall(r"(?<!not )\b([1-6][0-9]{2})\b", self.note)}

    @property
    def data(self) -> bytes:
        return (CORPUS / self.path).read_bytes()


def load_cases() -> list[Case]:
    if not VERDICTS.is_file():
        return []
    cases = []
    for line in VERDICTS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            path, kind, note = line.split("\t")
            cases.append(Case(path, kind, note))
    return cases


CASES = load_cases()
TAG = "torture1"


def by_path(path: str) -> Case:
    [case] = [case for case in CASES if case.path == path]
    return case


def test_every_message_has_exactly_one_verdict() -> None:
    on_disk = {
        f"{suite}/{file.name}"
        for suite in SUITES
        for file in (CORPUS / suite).iterdir()
        if file.is_file()
    }
    listed = [case.path for case in CASES]
    assert sorted(listed) == sorted(set(listed))
    assert set(listed) == on_disk
    assert {case.kind for case in CASES} <= KINDS


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.path)
def test_verdict(case: Case) -> None:
    verdict = screen_datagram(case.data, to_tag=TAG)
    if isinstance(verdict, Reject):
        check_reply(case, verdict)
    if case.kind == "valid":
        message = parse_message(case.data)
        assert check_mandatory(message) is None
        check_round_trip(message)
        # An unknown method may be refused (RFC 3261 8.2.1), as the method and not its
        # syntax decides; the note may name the codes it expects.
        refused = {405, 501} & (case.codes or {405, 501})
        assert isinstance(verdict, Accept) or (
            isinstance(verdict, Reject) and verdict.rejection.status in refused
        ), verdict
    elif case.kind == "invalid":
        if "(drop)" in case.note:
            assert isinstance(verdict, Drop), verdict
        else:
            assert isinstance(verdict, Reject), verdict
            assert verdict.rejection.status in (case.codes or {400}), verdict.rejection
    elif case.kind == "semantic":
        parse_message(case.data)
        assert isinstance(verdict, Reject), verdict
        assert verdict.rejection.status in case.codes, verdict.rejection


def check_round_trip(message: Request | Response) -> None:
    data = bytes(message)
    again = parse_message(data)
    assert bytes(again) == data
    assert again.body == message.body
    # serialization unfolds lines and supplies a missing Content-Length; nothing else changes
    assert without_length(again) == without_length(message)


def without_length(message: Request | Response) -> list[tuple[str, str]]:
    return [
        (name, value)
        for name, value in message.headers
        if name.lower() not in ("l", "content-length")
    ]


def check_reply(case: Case, verdict: Reject) -> None:
    """The reply reaches the sender: it carries every Via and the dialog identifiers."""
    reply = parse_message(bytes(verdict.response))
    assert isinstance(reply, Response)
    assert (reply.status, reply.reason) == (verdict.rejection.status, verdict.rejection.reason)
    assert "\r" not in reply.reason
    assert "\n" not in reply.reason
    request_vias = [
        value
        for line in case.data.split(b"\r\n\r\n")[0].decode("utf-8", "replace").split("\r\n")[1:]
        if re.match(r"(?i)(via|v)[ \t]*:", line)
        for value in [line.partition(":")[2].strip()]
    ]
    # RFC 4475 messages fold no Via line that a reply is built for
    assert [value for _, value in reply.headers.lines("Via")] == request_vias
    for name in ("Call-ID", "CSeq", "From"):
        if re.search(rb"(?im)^" + name.encode() + rb"[ \t]*:", case.data):
            assert name in reply.headers


@pytest.mark.parametrize(
    ("path", "header", "detail"),
    [
        ("rfc4475/badinv01.dat", "Via", "Via header: empty parameter"),
        (
            "rfc4475/scalar02.dat",
            "CSeq",
            "CSeq header: sequence number '36893488147419103232' exceeds 4294967295",
        ),
        ("rfc4475/quotbal.dat", "To", "To header: unterminated quoted string"),
        (
            "rfc4475/badaspec.dat",
            "To",
            "To header: bad URI ' sip:t.watson@example.org ': whitespace inside the URI",
        ),
        ("rfc4475/baddn.dat", "To", "To header: bad display name 'Watson, Thomas'"),
        (
            "rfc4475/mismatch01.dat",
            "CSeq",
            "CSeq header: method INVITE does not match request method OPTIONS",
        ),
        (
            "rfc4475/mismatch02.dat",
            "CSeq",
            "CSeq header: method INVITE does not match request method NEWMETHOD",
        ),
        ("rfc4475/insuf.dat", "To", "To header: missing"),
        ("rfc4475/multi01.dat", "To", "To header: appears 2 times"),
        ("rfc4475/mcl01.dat", "Content-Length", "Content-Length header: appears 2 times"),
    ],
)
def test_400_names_the_header(path: str, header: str, detail: str) -> None:
    message = parse_message(by_path(path).data)
    problem = check_mandatory(message)
    assert problem is not None
    assert (problem.header, problem.detail) == (header, detail)
    verdict = screen_datagram(by_path(path).data, to_tag=TAG)
    assert isinstance(verdict, Reject)
    assert verdict.response.start_line == f"SIP/2.0 400 {detail}"


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("rfc4475/clerr.dat", "Content-Length 9999 exceeds body of 154 bytes"),
        ("rfc4475/ncl.dat", "Content-Length header: bad value '-999'"),
        (
            "rfc4475/ltgtruri.dat",
            "request line: bad Request-URI '<sip:user@example.com>': forbidden character '<'",
        ),
        (
            "rfc4475/lwsruri.dat",
            "request line: expected Method SP Request-URI SP SIP-Version, found 4 elements"
            " in 'INVITE sip:user@example.com; lr SIP/2.0'",
        ),
        (
            "rfc4475/lwsstart.dat",
            "request line: elements not separated by single SP:"
            " 'INVITE  sip:user@example.com  SIP/2.0'",
        ),
        ("rfc4475/badvers.dat", "request line: bad SIP version 'SIP/7.0'"),
        ("rfc4475/bigcode.dat", "status line: bad status code '4294967301'"),
        (
            "rfc5118/ipv6-bad",
            "request line: bad Request-URI 'sip:2001:db8::10':"
            " IPv6 address '2001:db8::10' must be in brackets",
        ),
    ],
)
def test_unparseable_messages_name_the_problem(path: str, detail: str) -> None:
    with pytest.raises(SipParseError) as caught:
        parse_message(by_path(path).data)
    assert str(caught.value) == detail


def test_refusals_carry_the_headers_the_rfc_asks_for() -> None:
    bext = screen_datagram(by_path("rfc4475/bext01.dat").data, to_tag=TAG)
    assert isinstance(bext, Reject)
    # a UAS lists Require's option tags; Proxy-Require is for proxies
    assert (
        bext.response.headers.get("Unsupported") == "nothingSupportsThis, nothingSupportsThisEither"
    )
    invut = screen_datagram(by_path("rfc4475/invut.dat").data, to_tag=TAG)
    assert isinstance(invut, Reject)
    assert "application/sdp" in invut.response.headers.get_all("Accept")
    assert invut.response.to.tag == TAG


def request(path: str) -> Request:
    message = parse_message(by_path(path).data)
    assert isinstance(message, Request)
    return message


def response(path: str) -> Response:
    message = parse_message(by_path(path).data)
    assert isinstance(message, Response)
    return message


def check_wsinv() -> None:
    invite = request("rfc4475/wsinv.dat")
    assert invite.to.tag == "1918181833n"
    assert invite.from_.display_name == 'J Rosenberg \\"'
    assert invite.from_.tag == "98asjd8"
    assert invite.max_forwards == 68
    assert (invite.cseq.number, invite.cseq.method) == (9, "INVITE")
    assert [(via.transport, via.host, via.branch) for via in invite.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    contacts = invite.contacts
    assert contacts != STAR
    assert contacts[0].display_name == 'Quoted string ""'
    assert contacts[0].params.get("q") == "0.33"
    assert invite.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert invite.headers.get("Subject") == ""
    assert len(invite.body) == 150


def check_intmeth() -> None:
    message = request("rfc4475/intmeth.dat")
    assert message.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert isinstance(message.uri, SipUri)
    assert message.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert message.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert message.from_.tag == "_token~1'+`*%!-."
    value = message.from_.params.get("fromParam''~+*_!.-%")
    assert value is not None
    assert value == '"\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439"'


def check_esc01() -> None:
    message = request("rfc4475/esc01.dat")
    assert isinstance(message.uri, SipUri)
    assert unescape(message.uri.user or "") == "sips:user@example.com"
    assert isinstance(message.from_.uri, SipUri)
    assert unescape(message.from_.uri.user or "") == "I have spaces"
    contacts = message.contacts
    assert contacts != STAR
    contact = contacts[0].uri
    assert isinstance(contact, SipUri)
    assert [(unescape(n), unescape(v or "")) for n, v in contact.params] == [
        ("lr", ""),
        ("name", "value%41"),
    ]


def check_escnull() -> None:
    contacts = request("rfc4475/escnull.dat").contacts
    assert contacts != STAR
    users = [contact.uri.user for contact in contacts if isinstance(contact.uri, SipUri)]
    assert [unescape(user or "") for user in users] == ["\x00", "\x00\x00"]


def check_esc02() -> None:
    message = request("rfc4475/esc02.dat")
    assert message.method == "RE%47IST%45R"  # a method is never unescaped
    assert len(message.contacts) == 2  # C%6Fntact is another header
    assert message.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def check_longreq() -> None:
    message = request("rfc4475/longreq.dat")
    assert len(message.vias) == 34
    assert message.vias[-1].received == "192.0.2.5"
    assert message.to.display_name is not None
    assert "extremeextreme" in message.to.display_name
    assert isinstance(message.to.uri, SipUri)
    assert message.to.uri.port == 6000
    assert len(message.body) == 150


def check_dblreq() -> None:
    message = request("rfc4475/dblreq.dat")
    assert message.method == "REGISTER"
    assert message.body == b""


def check_semiuri() -> None:
    message = request("rfc4475/semiuri.dat")
    assert isinstance(message.uri, SipUri)
    assert (message.uri.user, len(message.uri.params)) == ("user;par=u%40example.net", 0)
    assert len(message.headers.get_all("Accept")) == 6


def check_transports() -> None:
    vias = request("rfc4475/transports.dat").vias
    assert [via.transport for via in vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def check_mpart01() -> None:
    message = request("rfc4475/mpart01.dat")
    assert len(message.body) == 553
    assert message.body.startswith(b"--7a9cbec02ceef655\r\n")
    assert message.body.endswith(b"--7a9cbec02ceef655--\r\n")
    assert message.top_via.wants_rport


def check_unreason() -> None:
    reason = response("rfc4475/unreason.dat").reason
    assert reason.startswith("= 2**3 * 5**2 \u043d\u043e")


def check_noreason() -> None:
    assert response("rfc4475/noreason.dat").reason == ""


def check_cparam() -> None:
    bare = request("rfc4475/cparam01.dat").contacts
    bracketed = request("rfc4475/cparam02.dat").contacts
    assert bare != STAR
    assert bracketed != STAR
    assert "unknownparam" in bare[0].params
    assert isinstance(bracketed[0].uri, SipUri)
    assert "unknownparam" in bracketed[0].uri.params


def check_regescrt() -> None:
    contacts = request("rfc4475/regescrt.dat").contacts
    assert contacts != STAR
    assert isinstance(contacts[0].uri, SipUri)
    assert contacts[0].uri.headers == (("Route", "%3Csip:sip.example.com%3E"),)


def check_inv2543() -> None:
    message = request("rfc4475/inv2543.dat")
    assert message.max_forwards is None
    assert message.top_via.branch is None
    assert message.from_.tag is None
    assert message.body.endswith(b"m=audio 49217 RTP/AVP 0\r\n")
    assert message.to.params.get("user") == "phone"


def check_ipv6() -> None:
    good = request("rfc5118/ipv6-good")
    assert isinstance(good.uri, SipUri)
    assert good.uri.host == "[2001:db8::10]"
    ambiguous = request("rfc5118/port-ambiguous")
    assert isinstance(ambiguous.uri, SipUri)
    assert (ambiguous.uri.host, ambiguous.uri.port) == ("[2001:db8::10:5070]", None)
    unambiguous = request("rfc5118/port-unambiguous")
    assert isinstance(unambiguous.uri, SipUri)
    assert (unambiguous.uri.host, unambiguous.uri.port) == ("[2001:db8::10]", 5070)
    assert request("rfc5118/via-received-param-with-delim").top_via.received == "[2001:db8::9:255]"
    assert request("rfc5118/via-received-param-no-delim").top_via.received == "2001:db8::9:255"
    mapped = request("rfc5118/ipv4-mapped-ipv6")
    assert (mapped.top_via.host, mapped.top_via.port) == ("[::ffff:192.0.2.10]", 19823)
    mixed = request("rfc5118/mult-ip-in-header").vias
    assert [(via.host, via.port, via.received) for via in mixed] == [
        ("[2001:db8::9:1]", 6050, None),
        ("192.0.2.1", None, None),
        ("[2001:db8::9:255]", None, "192.0.2.200"),
    ]


@pytest.mark.parametrize(
    "check",
    [
        check_wsinv,
        check_intmeth,
        check_esc01,
        check_escnull,
        check_esc02,
        check_longreq,
        check_dblreq,
        check_semiuri,
        check_transports,
        check_mpart01,
        check_unreason,
        check_noreason,
        check_cparam,
        check_regescrt,
        check_inv2543,
        check_ipv6,
    ],
    ids=lambda check: check.__name__.removeprefix("check_"),
)
def test_valid_messages_mean_what_the_rfc_says(check: Callable[[], None]) -> None:
    check()
