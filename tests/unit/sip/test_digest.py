import base64
import hashlib
import re
from dataclasses import dataclass, field

import pytest

from telportal.auth.credentials import DigestSecrets, digest_secrets
from telportal.auth.lockout import Lockout
from telportal.clock import FakeClock
from telportal.sip.digest import (
    MD5,
    SHA256,
    Authorized,
    BadRequest,
    Banned,
    Challenged,
    DigestChallenge,
    DigestCredentials,
    DigestError,
    DigestServer,
    DigestVerdict,
    answer_challenge,
    answer_challenge_ha1,
    choose_challenge,
    digest_response,
    format_challenge,
    format_credentials,
    parse_challenge,
    parse_credentials,
)

SECRET = bytes(range(32))
REALM = "acme"
URI = "sip:acme.example.com"
SOURCE = "192.0.2.10"
PASSWORD = "correct horse"

# RFC 2617 section 3.5, byte for byte (folded onto one line as the message layer does).
RFC2617_AUTHORIZATION = (
    'Digest username="Mufasa", realm="testrealm@host.com", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, '
    'nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", '
    'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)


@dataclass
class Store:
    """The caller's side of lookup: HA1 values only, and a record of the questions."""

    users: dict[str, DigestSecrets] = field(default_factory=dict)
    asked: list[tuple[str, str]] = field(default_factory=list)

    def add(self, username: str, password: str = PASSWORD) -> None:
        self.users[username] = digest_secrets(username, REALM, password)

    def lookup(self, username: str, realm: str) -> tuple[str, str] | None:
        self.asked.append((username, realm))
        found = self.users.get(username)
        return None if found is None else (found.ha1_md5, found.ha1_sha256)


@dataclass
class Rig:
    clock: FakeClock
    lockout: Lockout
    server: DigestServer
    store: Store

    def verify(
        self,
        authorization: str | None,
        *,
        method: str = "REGISTER",
        uri: str = URI,
        source: str = SOURCE,
        proxy: bool = False,
    ) -> DigestVerdict:
        return self.server.verify(
            method, uri, authorization, self.store.lookup, source=source, proxy=proxy
        )

    def challenge(self, algorithm: str = SHA256) -> str:
        for value in self.server.challenges():
            if parse_challenge(value).algorithm == algorithm:
                return value
        raise AssertionError(f"no {algorithm} challenge")

    def answer(
        self,
        *,
        algorithm: str = SHA256,
        username: str = "1001",
        password: str = PASSWORD,
        method: str = "REGISTER",
        uri: str = URI,
        nc: int = 1,
        challenge: str | None = None,
    ) -> str:
        return answer_challenge(
            challenge or self.challenge(algorithm),
            method,
            uri,
            username,
            password,
            cnonce="0a4f113b",
            nc=nc,
        )


@pytest.fixture
def rig() -> Rig:
    clock = FakeClock()
    lockout = Lockout(clock, max_failures=5, window_seconds=60, ban_seconds=600)
    store = Store()
    store.add("1001")
    return Rig(clock, lockout, DigestServer(clock, SECRET, REALM, lockout), store)


def challenged(verdict: DigestVerdict) -> Challenged:
    assert isinstance(verdict, Challenged), verdict
    return verdict


def bad_request(verdict: DigestVerdict) -> BadRequest:
    assert isinstance(verdict, BadRequest), verdict
    return verdict


def replace_param(value: str, name: str, new: str) -> str:
    """Rewrite one parameter of an Authorization value through the public codec."""
    parsed = parse_credentials(value)
    fields = {
        "username": parsed.username,
        "realm": parsed.realm,
        "nonce": parsed.nonce,
        "uri": parsed.uri,
        "response": parsed.response,
        "algorithm": parsed.algorithm,
        "cnonce": parsed.cnonce,
        "opaque": parsed.opaque,
        "qop": parsed.qop,
        "nc": parsed.nc,
    }
    fields[name] = new
    return format_credentials(DigestCredentials(**fields))  # type: ignore[arg-type]


# --- published and independent vectors ----------------------------------------------


def test_rfc2617_worked_example_verifies() -> None:
    credentials = parse_credentials(RFC2617_AUTHORIZATION)
    assert credentials == DigestCredentials(
        username="Mufasa",
        realm="testrealm@host.com",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        uri="/dir/index.html",
        response="6629fae49393a05397450978507c4ef1",
        cnonce="0a4f113b",
        opaque="5ccc069c403ebaf9f0171e9517f40e41",
        qop="auth",
        nc="00000001",
    )
    ha1 = digest_secrets("Mufasa", "testrealm@host.com", "Circle Of Life").ha1_md5
    expected = digest_response(
        MD5,
        ha1,
        "GET",
        credentials.uri,
        credentials.nonce,
        qop=credentials.qop,
        cnonce=credentials.cnonce,
        nc=credentials.nc,
    )
    assert expected == "6629fae49393a05397450978507c4ef1" == credentials.response


@pytest.mark.parametrize(
    ("algorithm", "response"),
    [
        (MD5, "8ca523f5e9506fed4657c9700eebdbec"),
        (SHA256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_examples(algorithm: str, response: str) -> None:
    # RFC 7616 section 3.9.1; note its password is "Circle of Life", lower-case "of".
    stored = digest_secrets("Mufasa", "http-auth@example.org", "Circle of Life")
    ha1 = stored.ha1_md5 if algorithm == MD5 else stored.ha1_sha256
    computed = digest_response(
        algorithm,
        ha1,
        "GET",
        "/dir/index.html",
        "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        qop="auth",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        nc="00000001",
    )
    assert computed == response


def test_sha256_response_computed_independently_verifies(rig: Rig) -> None:
    challenge = parse_challenge(rig.challenge(SHA256))

    def sha(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    ha1 = sha(f"1001:{REALM}:{PASSWORD}")
    ha2 = sha(f"INVITE:{URI}")
    response = sha(f"{ha1}:{challenge.nonce}:00000001:c0ffee:auth:{ha2}")
    header = (
        f'Digest username="1001", realm="{REALM}", nonce="{challenge.nonce}", uri="{URI}", '
        f'response="{response}", algorithm=SHA-256, cnonce="c0ffee", '
        f'opaque="{challenge.opaque}", qop=auth, nc=00000001'
    )
    assert rig.verify(header, method="INVITE") == Authorized("1001", REALM, SHA256)


# --- challenges -----------------------------------------------------------------------


def test_no_credentials_gets_one_challenge_per_algorithm_sha256_first(rig: Rig) -> None:
    verdict = challenged(rig.verify(None))
    assert (verdict.status, verdict.header, verdict.stale) == (401, "WWW-Authenticate", False)
    parsed = [parse_challenge(value) for value in verdict.challenges]
    assert [c.algorithm for c in parsed] == [SHA256, MD5]
    assert {c.realm for c in parsed} == {REALM}
    assert all(c.qop == ("auth",) and c.opaque and not c.stale for c in parsed)
    assert verdict.challenges[0].startswith(f'Digest realm="{REALM}", nonce="')
    assert verdict.challenges[0].endswith(', algorithm=SHA-256, qop="auth"')
    assert rig.lockout.banned_for(SOURCE) == 0
    assert rig.store.asked == []


def test_proxy_role_answers_407_with_proxy_authenticate(rig: Rig) -> None:
    verdict = challenged(rig.verify(None, proxy=True))
    assert (verdict.status, verdict.header) == (407, "Proxy-Authenticate")
    bad = bad_request(rig.verify("Digest nonsense", proxy=True))
    assert bad.reason.startswith("Proxy-Authorization: ")


def test_each_challenge_has_a_fresh_nonce(rig: Rig) -> None:
    first = parse_challenge(rig.server.challenges()[0]).nonce
    second = parse_challenge(rig.server.challenges()[0]).nonce
    assert first != second


def test_algorithms_are_configurable(rig: Rig) -> None:
    server = DigestServer(rig.clock, SECRET, REALM, rig.lockout, algorithms=[SHA256])
    assert [parse_challenge(v).algorithm for v in server.challenges()] == [SHA256]
    md5_answer = rig.answer(algorithm=MD5)  # from another server, but MD5 is refused first
    verdict = server.verify("REGISTER", URI, md5_answer, rig.store.lookup, source=SOURCE)
    assert challenged(verdict).reason == "algorithm 'MD5' was not offered"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"secret": b"short"}, "at least 16 bytes"),
        ({"nonce_lifetime": 0}, "positive"),
        ({"algorithms": ["SHA-512-256"]}, "algorithms"),
        ({"algorithms": []}, "algorithms"),
        ({"algorithms": [MD5, MD5]}, "algorithms"),
    ],
)
def test_server_configuration_is_checked(kwargs: dict[str, object], message: str) -> None:
    clock = FakeClock()
    lockout = Lockout(clock, 5, 60, 600)
    arguments: dict[str, object] = {"secret": SECRET, **kwargs}
    with pytest.raises(ValueError, match=message):
        DigestServer(clock, realm=REALM, lockout=lockout, **arguments)  # type: ignore[arg-type]


# --- round trips -------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", [SHA256, MD5])
def test_client_answer_round_trips_through_verify(rig: Rig, algorithm: str) -> None:
    authorization = rig.answer(algorithm=algorithm, method="INVITE", uri="sip:4008001000@acme")
    parsed = parse_credentials(authorization)
    assert (parsed.algorithm, parsed.qop, parsed.nc, parsed.cnonce) == (
        algorithm,
        "auth",
        "00000001",
        "0a4f113b",
    )
    verdict = rig.verify(authorization, method="INVITE", uri="sip:4008001000@acme")
    assert verdict == Authorized("1001", REALM, algorithm)
    assert rig.store.asked == [("1001", REALM)]


def test_lookup_may_return_digest_secrets(rig: Rig) -> None:
    def lookup(username: str, realm: str) -> DigestSecrets | None:
        return digest_secrets(username, realm, PASSWORD) if username == "1001" else None

    verdict = rig.server.verify("REGISTER", URI, rig.answer(), lookup, source=SOURCE)
    assert verdict == Authorized("1001", REALM, SHA256)


def test_increasing_nonce_counts_reuse_a_nonce(rig: Rig) -> None:
    challenge = rig.challenge()
    for nc in (1, 2, 7):
        assert isinstance(rig.verify(rig.answer(challenge=challenge, nc=nc)), Authorized)


def test_answer_without_qop_follows_rfc2069(rig: Rig) -> None:
    parsed = parse_challenge(rig.challenge(MD5))
    old_style = format_challenge(
        DigestChallenge(realm=parsed.realm, nonce=parsed.nonce, opaque=parsed.opaque)
    )
    authorization = rig.answer(challenge=old_style)
    credentials = parse_credentials(authorization)
    assert (credentials.qop, credentials.cnonce, credentials.nc, credentials.algorithm) == (
        None,
        None,
        None,
        None,
    )
    ha1 = digest_secrets("1001", REALM, PASSWORD).ha1_md5
    ha2 = hashlib.md5(f"REGISTER:{URI}".encode()).hexdigest()
    expected = hashlib.md5(f"{ha1}:{parsed.nonce}:{ha2}".encode()).hexdigest()
    assert credentials.response == expected
    assert rig.verify(authorization) == Authorized("1001", REALM, MD5)
    # RFC 2069 has no nonce count, so the same nonce is accepted only once.
    again = challenged(rig.verify(authorization))
    assert (again.stale, again.reason) == (True, "nonce count already used")


def test_response_in_upper_case_hex_is_accepted(rig: Rig) -> None:
    authorization = rig.answer()
    response = parse_credentials(authorization).response
    upper = replace_param(authorization, "response", response.upper())
    assert isinstance(rig.verify(upper), Authorized)


# --- refusals: same answer for unknown and known users ---------------------------------


def test_wrong_password_is_challenged_again(rig: Rig) -> None:
    verdict = challenged(rig.verify(rig.answer(password="wrong")))
    assert (verdict.status, verdict.stale) == (401, False)
    assert verdict.reason == "wrong username or password"


@pytest.mark.parametrize("algorithm", [SHA256, MD5])
def test_unknown_user_gets_exactly_the_wrong_password_verdict(rig: Rig, algorithm: str) -> None:
    wrong_password = challenged(rig.verify(rig.answer(algorithm=algorithm, password="nope")))
    unknown_user = challenged(rig.verify(rig.answer(algorithm=algorithm, username="9999")))
    assert rig.store.asked == [("1001", REALM), ("9999", REALM)]  # both did the lookup
    assert (unknown_user.status, unknown_user.header, unknown_user.stale) == (
        wrong_password.status,
        wrong_password.header,
        wrong_password.stale,
    )
    assert unknown_user.reason == wrong_password.reason
    shape = [
        (c.realm, c.opaque, c.algorithm, c.qop, c.stale, len(c.nonce))
        for c in map(parse_challenge, wrong_password.challenges)
    ]
    assert shape == [
        (c.realm, c.opaque, c.algorithm, c.qop, c.stale, len(c.nonce))
        for c in map(parse_challenge, unknown_user.challenges)
    ]


def test_user_with_an_empty_ha1_cannot_log_in(rig: Rig) -> None:
    def lookup(username: str, realm: str) -> tuple[str, str]:
        return ("", "")

    verdict = rig.server.verify("REGISTER", URI, rig.answer(), lookup, source=SOURCE)
    assert challenged(verdict).reason == "wrong username or password"


def test_wrong_realm_is_challenged_with_ours(rig: Rig) -> None:
    authorization = replace_param(rig.answer(), "realm", "other")
    verdict = challenged(rig.verify(authorization))
    assert verdict.reason == "realm 'other' is not ours"
    assert all(parse_challenge(c).realm == REALM for c in verdict.challenges)
    assert rig.store.asked == []


def test_uri_other_than_the_request_uri_is_a_bad_request(rig: Rig) -> None:
    verdict = bad_request(rig.verify(rig.answer(uri="sip:elsewhere.example.com")))
    assert verdict.reason == (
        "Authorization: uri 'sip:elsewhere.example.com' is not the Request-URI "
        "'sip:acme.example.com'"
    )


def test_uri_is_compared_after_trimming(rig: Rig) -> None:
    assert isinstance(rig.verify(rig.answer(), uri=f"  {URI}\t"), Authorized)


def test_forged_nonce_is_refused(rig: Rig) -> None:
    authorization = rig.answer()
    nonce = parse_credentials(authorization).nonce
    raw = bytearray(base64.urlsafe_b64decode(nonce + "=="))
    raw[0] ^= 0x01  # move the issue time; the HMAC no longer matches
    tampered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    # The last of 86 characters carries 2 bits of the nonce and 4 spare ones: a
    # respelling decodes to the same bytes and must still not count as our nonce.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    respelled = nonce[:-1] + alphabet[alphabet.index(nonce[-1]) ^ 1]
    assert base64.urlsafe_b64decode(respelled + "==") == base64.urlsafe_b64decode(nonce + "==")
    for bad_nonce in (tampered, respelled, "dcd98b7102dd2f0e8b11d0f600bfb0c093", "", nonce[:-2]):
        verdict = challenged(rig.verify(replace_param(authorization, "nonce", bad_nonce)))
        assert (verdict.stale, verdict.reason) == (False, "nonce was not issued by this server")
    assert rig.store.asked == []


def with_our_opaque(rig: Rig, foreign_challenge: str) -> str:
    """A foreign nonce dressed in our realm and opaque, so that only the nonce is wrong."""
    ours = parse_challenge(rig.challenge())
    nonce = parse_challenge(foreign_challenge).nonce
    return format_challenge(DigestChallenge(REALM, nonce, ours.opaque, SHA256, ("auth",)))


def test_nonce_signed_with_another_secret_is_refused(rig: Rig) -> None:
    other = DigestServer(rig.clock, b"another secret of 32 bytes......", REALM, rig.lockout)
    authorization = rig.answer(challenge=with_our_opaque(rig, other.challenges()[0]))
    assert challenged(rig.verify(authorization)).reason == "nonce was not issued by this server"
    # The opaque is derived from the secret too, so the untouched answer fails earlier.
    untouched = rig.answer(challenge=other.challenges()[0])
    assert challenged(rig.verify(untouched)).reason == "opaque is not the one we sent"


def test_nonce_for_another_realm_is_refused(rig: Rig) -> None:
    other = DigestServer(rig.clock, SECRET, "globex", rig.lockout)
    authorization = rig.answer(challenge=with_our_opaque(rig, other.challenges()[0]))
    assert challenged(rig.verify(authorization)).reason == "nonce was not issued by this server"


def test_wrong_or_missing_opaque_is_refused(rig: Rig) -> None:
    authorization = rig.answer()
    wrong = replace_param(authorization, "opaque", "5ccc069c403ebaf9f0171e9517f40e41")
    assert challenged(rig.verify(wrong)).reason == "opaque is not the one we sent"
    missing = authorization.replace(f', opaque="{parse_credentials(authorization).opaque}"', "")
    assert parse_credentials(missing).opaque is None
    assert challenged(rig.verify(missing)).reason == "opaque is not the one we sent"


@pytest.mark.parametrize(
    ("algorithm", "reason"),
    [
        ("MD5-sess", "algorithm 'MD5-sess' was not offered"),
        ("SHA-512-256", "algorithm 'SHA-512-256' was not offered"),
    ],
)
def test_algorithm_not_offered_is_refused(rig: Rig, algorithm: str, reason: str) -> None:
    authorization = replace_param(rig.answer(), "algorithm", algorithm)
    assert challenged(rig.verify(authorization)).reason == reason


def test_algorithm_names_compare_case_insensitively(rig: Rig) -> None:
    authorization = replace_param(rig.answer(), "algorithm", "sha-256")
    assert rig.verify(authorization) == Authorized("1001", REALM, SHA256)


def test_qop_not_offered_is_refused(rig: Rig) -> None:
    authorization = replace_param(rig.answer(), "qop", "auth-int")
    assert challenged(rig.verify(authorization)).reason == "qop 'auth-int' was not offered"


def test_other_scheme_is_challenged(rig: Rig) -> None:
    verdict = challenged(rig.verify("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="))
    assert verdict.reason == "scheme 'Basic' is not supported"


# --- stale nonces and replays ------------------------------------------------------------


def test_expired_nonce_with_the_right_password_is_stale(rig: Rig) -> None:
    challenge = rig.challenge()
    first, second = (rig.answer(challenge=challenge, nc=nc) for nc in (1, 2))
    rig.clock.advance(300)
    assert isinstance(rig.verify(first), Authorized)  # the last valid moment
    rig.clock.advance(1)
    verdict = challenged(rig.verify(second))
    assert (verdict.stale, verdict.reason) == (True, "nonce expired")
    assert all(value.endswith(", stale=true") for value in verdict.challenges)
    assert all(parse_challenge(value).stale for value in verdict.challenges)
    # A stale nonce is not a failed attempt: the client retries without its user.
    retry = answer_challenge(verdict.challenges[0], "REGISTER", URI, "1001", PASSWORD, "x", 1)
    assert isinstance(rig.verify(retry), Authorized)


def test_expired_nonce_with_a_wrong_password_is_not_stale(rig: Rig) -> None:
    authorization = rig.answer(password="wrong")
    rig.clock.advance(301)
    verdict = challenged(rig.verify(authorization))
    assert (verdict.stale, verdict.reason) == (False, "wrong username or password")


def test_nonce_lifetime_is_configurable(rig: Rig) -> None:
    server = DigestServer(rig.clock, SECRET, REALM, rig.lockout, nonce_lifetime=30)
    authorization = answer_challenge(
        server.challenges()[0], "REGISTER", URI, "1001", PASSWORD, "c", 1
    )
    rig.clock.advance(31)
    verdict = server.verify("REGISTER", URI, authorization, rig.store.lookup, source=SOURCE)
    assert challenged(verdict).stale


def test_nonce_from_an_earlier_run_is_stale(rig: Rig) -> None:
    # Same secret, new process: the count memory is gone, so the nonce must not be valid.
    earlier = DigestServer(rig.clock, SECRET, REALM, rig.lockout)
    authorization = rig.answer(challenge=earlier.challenges()[0])
    verdict = challenged(rig.verify(authorization))
    assert (verdict.stale, verdict.reason) == (True, "nonce expired")


def test_replayed_nonce_count_is_refused(rig: Rig) -> None:
    challenge = rig.challenge()
    first = rig.answer(challenge=challenge, nc=1)
    assert isinstance(rig.verify(first), Authorized)
    replay = challenged(rig.verify(first))
    assert (replay.stale, replay.reason) == (True, "nonce count already used")
    assert isinstance(rig.verify(rig.answer(challenge=challenge, nc=5)), Authorized)
    lower = challenged(rig.verify(rig.answer(challenge=challenge, nc=3)))
    assert lower.reason == "nonce count already used"
    assert rig.lockout.banned_for(SOURCE) == 0


def test_counts_are_forgotten_when_their_nonce_expires(rig: Rig) -> None:
    for _ in range(3):
        assert isinstance(rig.verify(rig.answer()), Authorized)
    assert rig.server.tracked_nonces == 3
    rig.clock.advance(300)
    rig.verify(None)
    assert rig.server.tracked_nonces == 3
    rig.clock.advance(1)
    rig.verify(None)
    assert rig.server.tracked_nonces == 0


# --- malformed headers -----------------------------------------------------------------


@pytest.mark.parametrize("missing", ["username", "realm", "nonce", "uri", "response"])
def test_missing_required_field_is_a_bad_request(rig: Rig, missing: str) -> None:
    authorization = rig.answer()
    parts = authorization.removeprefix("Digest ").split(", ")
    kept = [part for part in parts if not part.startswith(f"{missing}=")]
    verdict = bad_request(rig.verify("Digest " + ", ".join(kept)))
    assert verdict.reason == f"Authorization: missing parameter {missing!r}"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('Digest username="1001', "parameter 'username': unterminated quoted string"),
        ('Digest username="a\\"', "parameter 'username': unterminated quoted string"),
        ('Digest username="a\r\nb"', "parameter 'username': unterminated quoted string"),
        ('Digest username "1001"', "parameter 'username': missing '='"),
        ("Digest username=", "parameter 'username': missing value"),
        ('Digest username="a" realm="b"', "parameter 'username': expected ',' before 'realm"),
        ("Digest uri=sip:a@b", "parameter 'uri': expected ',' before ':a@b'"),
        ('Digest username="a", username="b"', "parameter 'username' appears twice"),
        ('Digest username="a",, realm="b"', "empty element in the parameter list"),
        ('Digest username="a",', "empty element in the parameter list"),
        ('Digest ="a"', "expected a parameter name at '=\"a\"'"),
        ("Digest", "no parameters after the scheme"),
        ("Digest   ", "no parameters after the scheme"),
        ("", "expected an auth scheme"),
        ('"Digest" username="a"', "expected an auth scheme"),
        ('Basic username="a"', "scheme 'Basic' is not Digest"),
    ],
)
def test_malformed_values_raise_digest_error(value: str, message: str) -> None:
    with pytest.raises(DigestError, match="^" + re.escape(message)):
        parse_credentials(value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("response", "zz"), "parameter 'response': expected hex digits, got 'zz'"),
        (("response", "abc"), "response has 3 hex digits, SHA-256 gives 64"),
        (("nc", "1"), "parameter 'nc': expected 8 hex digits, got '1'"),
        (("nc", "00000000"), "parameter 'nc': counts start at 00000001"),
        (("nc", "0000000g"), "parameter 'nc': expected 8 hex digits"),
    ],
)
def test_bad_field_values_are_bad_requests(rig: Rig, change: tuple[str, str], message: str) -> None:
    verdict = bad_request(rig.verify(replace_param(rig.answer(), *change)))
    assert verdict.reason.startswith(f"Authorization: {message}")


def test_non_ascii_response_is_a_bad_request_not_a_crash(rig: Rig) -> None:
    authorization = replace_param(rig.answer(), "response", "é" * 64)
    assert "expected hex digits" in bad_request(rig.verify(authorization)).reason


def test_qop_requires_cnonce_and_nc_and_forbids_them_without(rig: Rig) -> None:
    authorization = rig.answer()
    no_cnonce = authorization.replace(', cnonce="0a4f113b"', "")
    assert bad_request(rig.verify(no_cnonce)).reason == (
        "Authorization: missing parameter 'cnonce' (required with qop)"
    )
    no_nc = authorization.replace(", nc=00000001", "")
    assert bad_request(rig.verify(no_nc)).reason == (
        "Authorization: missing parameter 'nc' (required with qop)"
    )
    no_qop = authorization.replace(", qop=auth", "")
    assert bad_request(rig.verify(no_qop)).reason == (
        "Authorization: parameters 'cnonce' and 'nc' are only valid with 'qop'"
    )


def test_reasons_quote_client_text_safely(rig: Rig) -> None:
    value = 'Digest username="a" \r\nInjected: 1' + "x" * 200
    reason = bad_request(rig.verify(value)).reason
    assert "\r" not in reason
    assert "\n" not in reason
    assert len(reason) < 200


# --- the parser's tolerance --------------------------------------------------------------


def test_parser_handles_escapes_case_whitespace_and_quoted_tokens() -> None:
    value = (
        'dIgEsT\tUserName = "Mu\\"fa\\\\sa" ,REALM="r, with; punctuation",\t'
        'Nonce="n",uri="sip:a@b;transport=tcp",  response=0123abcd, '
        'ALGORITHM="SHA-256", qop="auth", nc=0000000A, cnonce="c", opaque="o", '
        'extension-param="ignored"'
    )
    assert parse_credentials(value) == DigestCredentials(
        username='Mu"fa\\sa',
        realm="r, with; punctuation",
        nonce="n",
        uri="sip:a@b;transport=tcp",
        response="0123abcd",
        algorithm="SHA-256",
        cnonce="c",
        opaque="o",
        qop="auth",
        nc="0000000A",
    )


def test_credentials_format_round_trips_with_escapes() -> None:
    original = DigestCredentials(
        username='we"ird\\name',
        realm="acme",
        nonce="n",
        uri="sip:a@b",
        response="00ff",
        algorithm=SHA256,
        cnonce="c",
        opaque="o",
        qop="auth",
        nc="00000001",
    )
    assert parse_credentials(format_credentials(original)) == original


def test_escaped_username_reaches_lookup_unquoted(rig: Rig) -> None:
    rig.store.add('Mu"fasa')
    authorization = rig.answer(username='Mu"fasa')
    assert '"Mu\\"fasa"' in authorization
    assert rig.verify(authorization) == Authorized('Mu"fasa', REALM, SHA256)


def test_challenge_parsing() -> None:
    challenge = parse_challenge(
        'Digest realm="biloxi.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc", stale=TRUE'
    )
    assert challenge == DigestChallenge(
        realm="biloxi.com",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        opaque="5ccc",
        qop=("auth", "auth-int"),
        stale=True,
    )
    assert parse_challenge(format_challenge(challenge)) == challenge
    with pytest.raises(DigestError, match=r"^missing parameter 'nonce'$"):
        parse_challenge('Digest realm="a"')
    with pytest.raises(DigestError, match=r"^parameter 'qop': empty option"):
        parse_challenge('Digest realm="a", nonce="n", qop="auth,"')


# --- the client ----------------------------------------------------------------------------


def test_choose_challenge_prefers_the_strongest_supported() -> None:
    md5 = 'Digest realm="a", nonce="n", qop="auth"'
    sha = 'Digest realm="a", nonce="n", algorithm=SHA-256, qop="auth"'
    odd = 'Digest realm="a", nonce="n", algorithm=SHA-512-256, qop="auth"'
    assert choose_challenge([md5, odd, sha]) == sha
    assert choose_challenge(["Basic realm=x", "garbage", md5]) == md5
    with pytest.raises(DigestError, match="no Digest challenge with a supported algorithm"):
        choose_challenge([odd])


@pytest.mark.parametrize(
    ("challenge", "nc", "message"),
    [
        ('Digest realm="a", nonce="n", algorithm=MD5-sess', 1, "algorithm 'MD5-sess'"),
        ('Digest realm="a", nonce="n", qop="auth-int"', 1, "qop 'auth-int' does not include"),
        ('Digest realm="a", nonce="n", qop="auth"', 0, "nc 0 is outside"),
        ('Digest realm="a", nonce="n", qop="auth"', 1 << 32, "is outside"),
        ('Digest realm="a"', 1, "missing parameter 'nonce'"),
    ],
)
def test_client_refuses_what_it_cannot_answer(challenge: str, nc: int, message: str) -> None:
    with pytest.raises(DigestError, match=re.escape(message)):
        answer_challenge(challenge, "INVITE", "sip:x@y", "u", "p", "c", nc)


def test_client_echoes_opaque_and_omits_absent_algorithm() -> None:
    value = answer_challenge(
        'Digest realm="a", nonce="n", opaque="op", qop="auth-int,auth"',
        "BYE",
        "sip:x",
        "u",
        "p",
        "cn",
        255,
    )
    parsed = parse_credentials(value)
    assert (parsed.opaque, parsed.algorithm, parsed.qop, parsed.nc) == (
        "op",
        None,
        "auth",
        "000000ff",
    )


@pytest.mark.parametrize("algorithm", [SHA256, MD5])
def test_client_answers_from_stored_ha1_as_the_password_would(rig: Rig, algorithm: str) -> None:
    stored = digest_secrets("1001", REALM, PASSWORD)
    challenge = next(c for c in rig.server.challenges() if f"algorithm={algorithm}" in c)
    uri = "sip:4008001000@acme"
    from_password = answer_challenge(challenge, "INVITE", uri, "1001", PASSWORD, "c0ffee", 1)
    from_ha1 = answer_challenge_ha1(
        challenge,
        "INVITE",
        uri,
        "1001",
        realm=REALM,
        ha1_md5=stored.ha1_md5,
        ha1_sha256=stored.ha1_sha256,
        cnonce="c0ffee",
        nc=1,
    )
    assert from_ha1 == from_password
    verdict = rig.server.verify("INVITE", uri, from_ha1, rig.store.lookup, source=SOURCE)
    assert verdict == Authorized("1001", REALM, algorithm)


def test_client_with_ha1_refuses_another_realm_and_a_missing_algorithm() -> None:
    with pytest.raises(DigestError, match="realm 'other' is not the configured realm 'acme'"):
        answer_challenge_ha1(
            'Digest realm="other", nonce="n"',
            "INVITE",
            "sip:x",
            "u",
            realm="acme",
            ha1_md5="0" * 32,
            ha1_sha256=None,
            cnonce="c",
            nc=1,
        )
    with pytest.raises(DigestError, match="no stored secret for algorithm SHA-256"):
        answer_challenge_ha1(
            'Digest realm="acme", nonce="n", algorithm=SHA-256',
            "INVITE",
            "sip:x",
            "u",
            realm="acme",
            ha1_md5="0" * 32,
            ha1_sha256=None,
            cnonce="c",
            nc=1,
        )


# --- lockout -------------------------------------------------------------------------------


def test_lockout_after_failures_then_recovery(rig: Rig) -> None:
    for _ in range(5):  # max_failures=5 in the rig
        assert isinstance(rig.verify(rig.answer(password="guess")), Challenged)
    banned = rig.verify(rig.answer())  # even the right password is not looked at
    assert banned == Banned(600.0)
    assert rig.store.asked == [("1001", REALM)] * 5
    assert isinstance(rig.verify(rig.answer(), source="198.51.100.7"), Authorized)

    rig.clock.advance(599)
    assert rig.verify(None) == Banned(1.0)
    rig.clock.advance(1)
    assert isinstance(rig.verify(rig.answer()), Authorized)


def test_malformed_and_refused_headers_count_as_failures(rig: Rig) -> None:
    rig.verify("Digest broken")
    rig.verify(replace_param(rig.answer(), "realm", "other"))
    rig.verify(rig.answer(uri="sip:other"))
    rig.verify(rig.answer(username="ghost"))
    assert rig.lockout.banned_for(SOURCE) == 0
    rig.verify("Basic Zm9vOmJhcg==")
    assert isinstance(rig.verify(None), Banned)


def test_success_does_not_clear_failures(rig: Rig) -> None:
    # Otherwise one valid account would let a source keep guessing other passwords.
    for _ in range(4):
        rig.verify(rig.answer(username="1002", password="guess"))
    assert isinstance(rig.verify(rig.answer()), Authorized)
    rig.verify(rig.answer(username="1002", password="guess"))
    assert isinstance(rig.verify(rig.answer()), Banned)


def test_stale_and_missing_credentials_are_not_failures(rig: Rig) -> None:
    authorization = rig.answer()
    assert isinstance(rig.verify(authorization), Authorized)
    for _ in range(10):
        assert challenged(rig.verify(authorization)).stale
        assert not challenged(rig.verify(None)).stale
    assert rig.lockout.banned_for(SOURCE) == 0


def test_digest_uri_may_leave_out_the_user_part() -> None:
    from telportal.sip.digest import _same_resource

    assert _same_resource("sip:1002@h:5060", "sip:1002@h:5060")
    assert _same_resource("sip:h:5060", "sip:1002@h:5060")  # as SIPp writes it
    assert not _same_resource("sip:other:5060", "sip:1002@h:5060")
    assert not _same_resource("sip:1003@h:5060", "sip:1002@h:5060")
    assert not _same_resource("sip:h:5060", "sip:h:5061")
