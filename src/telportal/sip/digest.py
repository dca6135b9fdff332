"""SIP digest authentication (RFC 3261 section 22, RFC 2617, RFC 7616, RFC 8760), sans-IO.

The server side is `DigestServer.verify`: it reads one Authorization (or
Proxy-Authorization) value and returns a `DigestVerdict`. The rules, in the order they
apply:

    Banned      the source address is locked out; nothing else is looked at
    Challenged  no credentials yet (not a failure), or credentials refused: another
                scheme, another realm, an algorithm or qop we did not offer, a wrong
                opaque, a nonce we did not issue, or a response that does not match.
                A refusal counts as a failure against the source address.
    BadRequest  the header does not parse, a required field is missing, or its uri is
                not the Request-URI (RFC 2617 3.2.2: "SHOULD return a 400"). Counted too.
    Challenged  stale=true: the response was right but the nonce had expired, came from
                an earlier run of this server, or its nonce count was already used.
                The client may retry at once without asking its user (RFC 2617 3.2.1),
                so this is not a failure.
    Authorized  everything above passed.

An unknown username and a wrong password take the same path: the response is
computed against a dummy HA1 and compared in constant time, and the verdict (kind,
reason, challenge shape) is identical, so neither the answer nor its timing tells an
attacker which usernames exist.

Nonces are stateless and unforgeable: base64url(issued_ms | instance tag | random |
HMAC-SHA256(secret, realm | the rest)). The issue time comes from the injected clock's
monotonic time, which cannot be moved by an operator changing the wall clock; the
instance tag makes a nonce from an earlier run of the process stale rather than valid,
because the nonce-count memory that stops replays does not survive a restart.
The only state kept is the highest nonce count seen per nonce, and each entry is
dropped when its nonce expires, so memory is bounded by the successful requests of one
nonce lifetime.

The client side (`answer_challenge`, `choose_challenge`) answers a challenge from a
trunk that wants us to authenticate, and drives the tests.
"""

import base64
import hashlib
import heapq
import hmac
import re
import secrets
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TypeAlias

from telportal.auth.credentials import DigestSecrets, digest_secrets
from telportal.auth.lockout import Lockout
from telportal.clock import Clock

MD5 = "MD5"
SHA256 = "SHA-256"
# Preference order of RFC 8760 section 2.4: the strongest first. SHA-512-256 is not
# offered because the store keeps HA1 values for these two only.
ALGORITHMS: tuple[str, ...] = (SHA256, MD5)
QOP_AUTH = "auth"

AUTHORIZATION = "Authorization"
PROXY_AUTHORIZATION = "Proxy-Authorization"
WWW_AUTHENTICATE = "WWW-Authenticate"
PROXY_AUTHENTICATE = "Proxy-Authenticate"

DEFAULT_NONCE_LIFETIME = 300.0
MIN_SECRET_BYTES = 16

Lookup: TypeAlias = Callable[[str, str], tuple[str, str] | DigestSecrets | None]
"""lookup(username, realm) -> (ha1_md5, ha1_sha256), or None for an unknown user."""

_HASHERS: dict[str, Callable[[bytes], str]] = {
    MD5: lambda data: hashlib.md5(data, usedforsecurity=False).hexdigest(),
    SHA256: lambda data: hashlib.sha256(data).hexdigest(),
}
_HEX_DIGITS = {MD5: 32, SHA256: 64}

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# quoted-string = DQUOTE *(qdtext / quoted-pair) DQUOTE; a raw line break never belongs
# in a header value that reached us unfolded.
_QUOTED_RE = re.compile(r'"((?:[^"\\\r\n]|\\[^\r\n])*)"')
_QUOTED_PAIR_RE = re.compile(r"\\(.)", re.DOTALL)
_HEX_RE = re.compile(r"[0-9A-Fa-f]+")
_NC_RE = re.compile(r"[0-9A-Fa-f]{8}")
_WHITESPACE = " \t"
_EXCERPT_LIMIT = 48

_REQUIRED_CREDENTIALS = ("username", "realm", "nonce", "uri", "response")
_REQUIRED_CHALLENGE = ("realm", "nonce")

# Nonce layout: issued_ms (signed 64-bit), instance tag (8), random (16), HMAC (32).
_NONCE_HEAD = struct.Struct(">q8s16s")
_MAC_BYTES = 32
_NONCE_CHARS = 86  # base64url of 64 bytes without padding
_NONCE_RE = re.compile(rf"[A-Za-z0-9_-]{{{_NONCE_CHARS}}}")
_NONCE_DOMAIN = b"telportal-digest-nonce\x00"
_OPAQUE_DOMAIN = b"telportal-digest-opaque\x00"
# Without qop a nonce may be used once; this count is above any 8-hex-digit nc.
_USED_WITHOUT_QOP = 1 << 32


class DigestError(ValueError):
    """A digest header that does not follow RFC 2617 / RFC 7616; the message says where."""


# --- header values ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DigestCredentials:
    """An Authorization / Proxy-Authorization value with quotes and escapes resolved.

    Values are kept as written (case included) because the response hash covers them
    exactly as the client sent them; `algorithm` is None when absent (meaning MD5).
    """

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str | None = None
    cnonce: str | None = None
    opaque: str | None = None
    qop: str | None = None
    nc: str | None = None


@dataclass(frozen=True, slots=True)
class DigestChallenge:
    """A WWW-Authenticate / Proxy-Authenticate value; `qop` lists the offered options."""

    realm: str
    nonce: str
    opaque: str | None = None
    algorithm: str | None = None
    qop: tuple[str, ...] = ()
    stale: bool = False


def parse_credentials(value: str) -> DigestCredentials:
    params = _parse_digest(value)
    for name in _REQUIRED_CREDENTIALS:
        if name not in params:
            raise DigestError(f"missing parameter {name!r}")
    response = params["response"]
    if not _HEX_RE.fullmatch(response):
        raise DigestError(f"parameter 'response': expected hex digits, got {_excerpt(response)}")
    qop, cnonce, nc = params.get("qop"), params.get("cnonce"), params.get("nc")
    if qop is None:
        # RFC 2617 3.2.2: cnonce and nc MUST NOT be sent when the server sent no qop;
        # their presence means the client hashed something we cannot reproduce.
        if cnonce is not None or nc is not None:
            raise DigestError("parameters 'cnonce' and 'nc' are only valid with 'qop'")
    else:
        if cnonce is None:
            raise DigestError("missing parameter 'cnonce' (required with qop)")
        if nc is None:
            raise DigestError("missing parameter 'nc' (required with qop)")
        if not _NC_RE.fullmatch(nc):
            raise DigestError(f"parameter 'nc': expected 8 hex digits, got {_excerpt(nc)}")
        if int(nc, 16) == 0:
            raise DigestError("parameter 'nc': counts start at 00000001")
    return DigestCredentials(
        username=params["username"],
        realm=params["realm"],
        nonce=params["nonce"],
        uri=params["uri"],
        response=response,
        algorithm=params.get("algorithm"),
        cnonce=cnonce,
        opaque=params.get("opaque"),
        qop=qop,
        nc=nc,
    )


def format_credentials(credentials: DigestCredentials) -> str:
    parts = [
        f"username={_quote(credentials.username)}",
        f"realm={_quote(credentials.realm)}",
        f"nonce={_quote(credentials.nonce)}",
        f"uri={_quote(credentials.uri)}",
        f"response={_quote(credentials.response)}",
    ]
    if credentials.algorithm is not None:
        parts.append(f"algorithm={credentials.algorithm}")
    if credentials.cnonce is not None:
        parts.append(f"cnonce={_quote(credentials.cnonce)}")
    if credentials.opaque is not None:
        parts.append(f"opaque={_quote(credentials.opaque)}")
    if credentials.qop is not None:
        parts.append(f"qop={credentials.qop}")
    if credentials.nc is not None:
        parts.append(f"nc={credentials.nc}")
    return "Digest " + ", ".join(parts)


def parse_challenge(value: str) -> DigestChallenge:
    params = _parse_digest(value)
    for name in _REQUIRED_CHALLENGE:
        if name not in params:
            raise DigestError(f"missing parameter {name!r}")
    qop = params.get("qop")
    options = tuple(o.strip(_WHITESPACE) for o in qop.split(",")) if qop is not None else ()
    if any(not option for option in options):
        raise DigestError(f"parameter 'qop': empty option in {_excerpt(qop or '')}")
    return DigestChallenge(
        realm=params["realm"],
        nonce=params["nonce"],
        opaque=params.get("opaque"),
        algorithm=params.get("algorithm"),
        qop=options,
        stale=params.get("stale", "").lower() == "true",
    )


def format_challenge(challenge: DigestChallenge) -> str:
    parts = [f"realm={_quote(challenge.realm)}", f"nonce={_quote(challenge.nonce)}"]
    if challenge.opaque is not None:
        parts.append(f"opaque={_quote(challenge.opaque)}")
    if challenge.algorithm is not None:
        parts.append(f"algorithm={challenge.algorithm}")
    if challenge.qop:
        parts.append(f"qop={_quote(','.join(challenge.qop))}")
    if challenge.stale:
        parts.append("stale=true")
    return "Digest " + ", ".join(parts)


# --- the digest computation ---------------------------------------------------------


def digest_response(
    algorithm: str,
    ha1: str,
    method: str,
    uri: str,
    nonce: str,
    *,
    qop: str | None = None,
    cnonce: str | None = None,
    nc: str | None = None,
) -> str:
    """request-digest of RFC 2617 3.2.2.1 (qop=auth) or RFC 2069 (no qop)."""
    hasher = _HASHERS.get(algorithm)
    if hasher is None:
        raise DigestError(f"algorithm {_excerpt(algorithm)} is not supported")
    ha2 = hasher(_octets(f"{method}:{uri}"))
    if qop is None:
        return hasher(_octets(f"{ha1}:{nonce}:{ha2}"))
    if cnonce is None or nc is None:
        raise DigestError("qop needs both cnonce and nc")
    return hasher(_octets(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"))


# --- the server ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Authorized:
    username: str
    realm: str
    algorithm: str


@dataclass(frozen=True, slots=True)
class Challenged:
    """Answer `status` with one `header` field per entry of `challenges`, in order.

    `reason` is for logs only; it is the same for an unknown user and a wrong password.
    """

    status: int
    header: str
    challenges: tuple[str, ...]
    stale: bool
    reason: str


@dataclass(frozen=True, slots=True)
class BadRequest:
    """Answer 400; `reason` names the problem and is safe for a reason phrase."""

    reason: str


@dataclass(frozen=True, slots=True)
class Banned:
    """The source is locked out: drop silently or answer 403, at the transport's choice."""

    retry_after: float


DigestVerdict: TypeAlias = Authorized | Challenged | BadRequest | Banned


class _Nonce(Enum):
    VALID = "valid"
    STALE = "stale"
    FORGED = "forged"


class _Refused(Exception):
    """Credentials refused before the user is looked at; caught inside verify only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Screened:
    credentials: DigestCredentials
    algorithm: str
    nonce: _Nonce
    issued_ms: int


OPAQUE_HEX_CHARS = 32


class DigestServer:
    """Issues challenges and verifies credentials for one realm (a tenant's slug)."""

    def __init__(
        self,
        clock: Clock,
        secret: bytes,
        realm: str,
        lockout: Lockout,
        *,
        nonce_lifetime: float = DEFAULT_NONCE_LIFETIME,
        algorithms: Sequence[str] = ALGORITHMS,
    ) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the nonce secret needs at least {MIN_SECRET_BYTES} bytes")
        if nonce_lifetime <= 0:
            raise ValueError("the nonce lifetime must be positive")
        unknown = [a for a in algorithms if a not in _HASHERS]
        if unknown or not algorithms or len(set(algorithms)) != len(algorithms):
            raise ValueError(f"algorithms must be distinct, non-empty, among {ALGORITHMS}")
        self.realm = realm
        self.algorithms = tuple(algorithms)
        self.nonce_lifetime = nonce_lifetime
        self._clock = clock
        self._secret = secret
        self._lockout = lockout
        self._realm_octets = realm.encode()
        self._lifetime_ms = int(nonce_lifetime * 1000)
        # Tells this run's nonces from those of an earlier run signed with the same secret.
        self._instance = secrets.token_bytes(8)
        # 128 bits are plenty for a value that only has to be echoed back, and some
        # clients (SIPp 3.6) cut opaque values at 63 characters.
        opaque = hmac.new(secret, _OPAQUE_DOMAIN + self._realm_octets, "sha256").hexdigest()
        self._opaque = opaque[:OPAQUE_HEX_CHARS]
        self._dummy_ha1 = {a: secrets.token_hex(_HEX_DIGITS[a] // 2) for a in _HASHERS}
        self._counts: dict[str, int] = {}
        self._expiries: list[tuple[int, str]] = []

    @property
    def tracked_nonces(self) -> int:
        """Nonces whose count is remembered; bounded by one lifetime's successful use."""
        return len(self._counts)

    def challenges(self, *, stale: bool = False) -> tuple[str, ...]:
        """One challenge per algorithm, strongest first, sharing one fresh nonce."""
        nonce = self._new_nonce(self._now_ms())
        return tuple(
            format_challenge(
                DigestChallenge(
                    realm=self.realm,
                    nonce=nonce,
                    opaque=self._opaque,
                    algorithm=algorithm,
                    qop=(QOP_AUTH,),
                    stale=stale,
                )
            )
            for algorithm in self.algorithms
        )

    def verify(
        self,
        method: str,
        request_uri: str,
        authorization: str | None,
        lookup: Lookup,
        *,
        source: str,
        proxy: bool = False,
    ) -> DigestVerdict:
        """Check one request's credentials; `proxy` selects 407 and the Proxy- headers.

        The Lockout is keyed by `source` exactly as given, so the transport can ask it
        about an address before parsing anything.
        """
        now_ms = self._now_ms()
        self._forget_expired(now_ms)
        if (left := self._lockout.banned_for(source)) > 0:
            return Banned(left)
        if authorization is None:
            return self._challenged(proxy, "no credentials")
        header = PROXY_AUTHORIZATION if proxy else AUTHORIZATION
        try:
            checked = self._screen(request_uri, authorization, now_ms)
        except _Refused as refusal:
            self._lockout.failed(source)
            return self._challenged(proxy, refusal.reason)
        except DigestError as exc:
            self._lockout.failed(source)
            return BadRequest(f"{header}: {exc}")
        return self._judge(checked, method, lookup, source, proxy)

    def _screen(self, request_uri: str, authorization: str, now_ms: int) -> _Screened:
        """Every check that does not depend on the user; raises _Refused or DigestError."""
        scheme = _scheme(authorization)
        if scheme is not None and scheme.lower() != "digest":
            raise _Refused(f"scheme {_excerpt(scheme)} is not supported")
        credentials = parse_credentials(authorization)
        if credentials.realm != self.realm:
            raise _Refused(f"realm {_excerpt(credentials.realm)} is not ours")
        algorithm = _canonical_algorithm(credentials.algorithm)
        if algorithm is None or algorithm not in self.algorithms:
            written = credentials.algorithm or MD5
            raise _Refused(f"algorithm {_excerpt(written)} was not offered")
        if credentials.qop is not None and credentials.qop.lower() != QOP_AUTH:
            raise _Refused(f"qop {_excerpt(credentials.qop)} was not offered")
        if len(credentials.response) != _HEX_DIGITS[algorithm]:
            raise DigestError(
                f"response has {len(credentials.response)} hex digits, "
                f"{algorithm} gives {_HEX_DIGITS[algorithm]}"
            )
        # The digest-uri should be the Request-URI verbatim (RFC 3261 22.4), but some
        # clients (SIPp) send it without the user part. Either form is accepted: the
        # response hash covers the uri as sent, and nonce counts stop replays.
        if not _same_resource(credentials.uri, request_uri):
            raise DigestError(
                f"uri {_excerpt(credentials.uri)} is not the Request-URI {_excerpt(request_uri)}"
            )
        if credentials.opaque is None or not _same(credentials.opaque, self._opaque):
            raise _Refused("opaque is not the one we sent")
        state, issued_ms = self._check_nonce(credentials.nonce, now_ms)
        if state is _Nonce.FORGED:
            raise _Refused("nonce was not issued by this server")
        return _Screened(credentials, algorithm, state, issued_ms)

    def _judge(
        self, checked: _Screened, method: str, lookup: Lookup, source: str, proxy: bool
    ) -> DigestVerdict:
        credentials, algorithm = checked.credentials, checked.algorithm
        # From here on an unknown user does exactly the work of a known one, and ends in
        # the same verdict with the same reason.
        ha1, known = self._ha1(lookup(credentials.username, self.realm), algorithm)
        expected = digest_response(
            algorithm,
            ha1,
            method,
            credentials.uri,
            credentials.nonce,
            qop=credentials.qop,
            cnonce=credentials.cnonce,
            nc=credentials.nc,
        )
        if not (_same(expected, credentials.response.lower()) and known):
            self._lockout.failed(source)
            return self._challenged(proxy, "wrong username or password")
        if checked.nonce is _Nonce.STALE:
            return self._challenged(proxy, "nonce expired", stale=True)
        if not self._note_use(credentials, checked.issued_ms):
            return self._challenged(proxy, "nonce count already used", stale=True)
        # No lockout.succeeded(source) here: one valid account must not let a source
        # clear the failures it piles up guessing the passwords of others.
        return Authorized(credentials.username, self.realm, algorithm)

    # --- helpers ---

    def _now_ms(self) -> int:
        return int(self._clock.monotonic() * 1000)

    def _challenged(self, proxy: bool, reason: str, *, stale: bool = False) -> Challenged:
        return Challenged(
            status=407 if proxy else 401,
            header=PROXY_AUTHENTICATE if proxy else WWW_AUTHENTICATE,
            challenges=self.challenges(stale=stale),
            stale=stale,
            reason=reason,
        )

    def _ha1(
        self, found: tuple[str, str] | DigestSecrets | None, algorithm: str
    ) -> tuple[str, bool]:
        if isinstance(found, DigestSecrets):
            found = (found.ha1_md5, found.ha1_sha256)
        stored = None if found is None else found[0] if algorithm == MD5 else found[1]
        if not stored:
            return self._dummy_ha1[algorithm], False
        return stored.lower(), True

    def _mac(self, head: bytes) -> bytes:
        message = _NONCE_DOMAIN + self._realm_octets + b"\x00" + head
        return hmac.new(self._secret, message, "sha256").digest()

    def _new_nonce(self, now_ms: int) -> str:
        head = _NONCE_HEAD.pack(now_ms, self._instance, secrets.token_bytes(16))
        return base64.urlsafe_b64encode(head + self._mac(head)).rstrip(b"=").decode("ascii")

    def _check_nonce(self, nonce: str, now_ms: int) -> tuple[_Nonce, int]:
        raw = _decode_nonce(nonce)
        head, mac = raw[: _NONCE_HEAD.size], raw[_NONCE_HEAD.size :]
        if len(mac) != _MAC_BYTES or not hmac.compare_digest(mac, self._mac(head)):
            return _Nonce.FORGED, 0
        issued_ms: int
        instance: bytes
        issued_ms, instance, _ = _NONCE_HEAD.unpack(head)
        if instance != self._instance:
            return _Nonce.STALE, issued_ms
        if issued_ms > now_ms:
            # Only a signer with our secret and a clock ahead of ours could make this.
            return _Nonce.FORGED, 0
        if now_ms - issued_ms > self._lifetime_ms:
            return _Nonce.STALE, issued_ms
        return _Nonce.VALID, issued_ms

    def _note_use(self, credentials: DigestCredentials, issued_ms: int) -> bool:
        """Record a use of a nonce; False when it is a replay (RFC 7616 3.4.1, nc)."""
        last = self._counts.get(credentials.nonce)
        if credentials.nc is None:
            if last is not None:
                return False
            count = _USED_WITHOUT_QOP
        else:
            count = int(credentials.nc, 16)
            if last is not None and count <= last:
                return False
        if last is None:
            heapq.heappush(self._expiries, (issued_ms + self._lifetime_ms, credentials.nonce))
        self._counts[credentials.nonce] = count
        return True

    def _forget_expired(self, now_ms: int) -> None:
        # An expired nonce is refused as stale before its count is consulted, so its
        # entry is no longer needed.
        while self._expiries and self._expiries[0][0] < now_ms:
            _, nonce = heapq.heappop(self._expiries)
            del self._counts[nonce]


def _decode_nonce(nonce: str) -> bytes:
    """The octets of a nonce in our spelling; empty for anything else."""
    if not _NONCE_RE.fullmatch(nonce):
        return b""
    raw = base64.urlsafe_b64decode(nonce + "==")
    # The last character has spare bits; accepting only our own spelling keeps one
    # nonce from having two entries in the count table.
    if base64.urlsafe_b64encode(raw).rstrip(b"=") != nonce.encode("ascii"):
        return b""
    return raw


# --- the client ---------------------------------------------------------------------


def choose_challenge(values: Iterable[str]) -> str:
    """The challenge to answer among several: the strongest algorithm we support."""
    best: tuple[int, str] | None = None
    for value in values:
        try:
            challenge = parse_challenge(value)
        except DigestError:
            continue
        algorithm = _canonical_algorithm(challenge.algorithm)
        if algorithm not in ALGORITHMS:
            continue
        rank = ALGORITHMS.index(algorithm)
        if best is None or rank < best[0]:
            best = (rank, value)
    if best is None:
        raise DigestError("no Digest challenge with a supported algorithm")
    return best[1]


def answer_challenge(
    challenge: str,
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str,
    nc: int,
) -> str:
    """An Authorization value answering one WWW-Authenticate / Proxy-Authenticate value.

    qop=auth is used when offered; a challenge without qop gets an RFC 2069 answer, in
    which cnonce and nc are not sent.
    """
    parsed = parse_challenge(challenge)
    stored = digest_secrets(username, parsed.realm, password)
    return _answer(parsed, method, uri, username, stored.ha1_md5, stored.ha1_sha256, cnonce, nc)


def answer_challenge_ha1(
    challenge: str,
    method: str,
    uri: str,
    username: str,
    *,
    realm: str,
    ha1_md5: str | None,
    ha1_sha256: str | None,
    cnonce: str,
    nc: int,
) -> str:
    """Answer a challenge from stored HA1 values instead of a password.

    This is how we authenticate to trunks without keeping their passwords: HA1 is
    bound to one realm, so a challenge for another realm cannot be answered, and an
    algorithm whose HA1 we lack cannot either; both are DigestErrors naming why.
    """
    parsed = parse_challenge(challenge)
    if parsed.realm != realm:
        raise DigestError(
            f"challenge realm {_excerpt(parsed.realm)} "
            f"is not the configured realm {_excerpt(realm)}"
        )
    return _answer(parsed, method, uri, username, ha1_md5, ha1_sha256, cnonce, nc)


def _answer(
    parsed: DigestChallenge,
    method: str,
    uri: str,
    username: str,
    ha1_md5: str | None,
    ha1_sha256: str | None,
    cnonce: str,
    nc: int,
) -> str:
    algorithm = _canonical_algorithm(parsed.algorithm)
    if algorithm is None:
        raise DigestError(f"algorithm {_excerpt(parsed.algorithm or '')} is not supported")
    qop: str | None = None
    if parsed.qop:
        if QOP_AUTH not in (option.lower() for option in parsed.qop):
            raise DigestError(f"qop {_excerpt(','.join(parsed.qop))} does not include auth")
        qop = QOP_AUTH
    if not 0 < nc <= 0xFFFFFFFF:
        raise DigestError(f"nc {nc} is outside 1..ffffffff")
    ha1 = ha1_md5 if algorithm == MD5 else ha1_sha256
    if ha1 is None:
        raise DigestError(f"no stored secret for algorithm {algorithm}")
    nc_value = f"{nc:08x}" if qop else None
    cnonce_value = cnonce if qop else None
    response = digest_response(
        algorithm, ha1, method, uri, parsed.nonce, qop=qop, cnonce=cnonce_value, nc=nc_value
    )
    return format_credentials(
        DigestCredentials(
            username=username,
            realm=parsed.realm,
            nonce=parsed.nonce,
            uri=uri,
            response=response,
            algorithm=parsed.algorithm,
            cnonce=cnonce_value,
            opaque=parsed.opaque,
            qop=qop,
            nc=nc_value,
        )
    )


# --- the auth-param parser ----------------------------------------------------------


def _parse_digest(value: str) -> dict[str, str]:
    """`Digest name=value, ...` into lower-case names and unquoted values."""
    scheme = _scheme(value)
    if scheme is None:
        raise DigestError(f"expected an auth scheme, got {_excerpt(value)}")
    if scheme.lower() != "digest":
        raise DigestError(f"scheme {_excerpt(scheme)} is not Digest")
    text = value.strip(_WHITESPACE)
    return _parse_params(text, len(scheme))


def _scheme(value: str) -> str | None:
    """The leading auth-scheme token, or None when there is none."""
    text = value.strip(_WHITESPACE)
    match = _TOKEN_RE.match(text)
    if match is None:
        return None
    end = match.end()
    if end < len(text) and text[end] not in _WHITESPACE:
        return None
    return match.group()


def _parse_params(text: str, pos: int) -> dict[str, str]:
    # auth-param = token LWS "=" LWS ( token / quoted-string ), separated by LWS "," LWS.
    # Names compare case-insensitively (RFC 2617 1.2); a value may be a token or a
    # quoted string whatever the parameter, because deployed clients quote
    # `algorithm` and leave `response` bare; the content is what gets checked.
    params: dict[str, str] = {}
    end = len(text)
    pos = _skip_whitespace(text, pos)
    if pos == end:
        raise DigestError("no parameters after the scheme")
    while True:
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise DigestError(f"expected a parameter name at {_excerpt(text[pos:])}")
        name = match.group().lower()
        pos = _skip_whitespace(text, match.end())
        if pos == end or text[pos] != "=":
            raise DigestError(f"parameter {name!r}: missing '='")
        content, pos = _read_value(text, _skip_whitespace(text, pos + 1), name)
        if name in params:
            raise DigestError(f"parameter {name!r} appears twice")
        params[name] = content
        pos = _skip_whitespace(text, pos)
        if pos == end:
            return params
        if text[pos] != ",":
            raise DigestError(
                f"parameter {name!r}: expected ',' before {_excerpt(text[pos:])}"
                " (values other than tokens must be quoted)"
            )
        pos = _skip_whitespace(text, pos + 1)
        if pos == end or text[pos] == ",":
            raise DigestError("empty element in the parameter list")


def _read_value(text: str, pos: int, name: str) -> tuple[str, int]:
    """The value (token or quoted-string, unescaped) at pos, and the position after it."""
    if pos < len(text) and text[pos] == '"':
        quoted = _QUOTED_RE.match(text, pos)
        if quoted is None:
            raise DigestError(f"parameter {name!r}: unterminated quoted string")
        content = _QUOTED_PAIR_RE.sub(r"\1", quoted.group(1))
        end = quoted.end()
    else:
        token = _TOKEN_RE.match(text, pos)
        if token is None:
            raise DigestError(f"parameter {name!r}: missing value")
        content, end = token.group(), token.end()
    try:
        _octets(content)
    except UnicodeEncodeError:
        raise DigestError(f"parameter {name!r}: value is not text") from None
    return content, end


def _skip_whitespace(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WHITESPACE:
        pos += 1
    return pos


# --- small pieces -------------------------------------------------------------------


def _canonical_algorithm(written: str | None) -> str | None:
    """MD5 when absent (RFC 2617 3.2.1); names compare case-insensitively; None if unknown."""
    if written is None:
        return MD5
    for algorithm in _HASHERS:
        if written.lower() == algorithm.lower():
            return algorithm
    return None


def _octets(text: str) -> bytes:
    # The message layer decodes with surrogateescape; this gives back the octets the
    # client actually hashed, UTF-8 or not.
    return text.encode("utf-8", "surrogateescape")


def _same(a: str, b: str) -> bool:
    # compare_digest refuses non-ASCII str, so compare the octets.
    return hmac.compare_digest(_octets(a), _octets(b))


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _excerpt(text: str) -> str:
    """Quote client text for a message: bounded, escaped, never multi-line."""
    if len(text) > _EXCERPT_LIMIT:
        text = text[: _EXCERPT_LIMIT - 3] + "..."
    return repr(text)


def _same_resource(digest_uri: str, request_uri: str) -> bool:
    """The digest-uri is the Request-URI, or it with the user part left out."""
    written, target = digest_uri.strip(_WHITESPACE), request_uri.strip(_WHITESPACE)
    if written == target:
        return True
    scheme, sep, rest = target.partition(":")
    user, at, hostpart = rest.partition("@")
    return bool(sep and at and user) and written == f"{scheme}:{hostpart}"
