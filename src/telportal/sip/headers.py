"""The header section of a SIP message (RFC 3261 sections 7.3 and 20).

`Headers` is an ordered multimap of field lines. Each line keeps the name as it was
written ("v", "VIA", "Via" all stay as they were) so that a parsed message serializes
back to its own bytes, while lookups go through a canonical key: lower case, compact
forms expanded. For header fields whose value is a comma-separated list (Via, Contact,
Route, ...) `get_all` splits every line and returns the elements of all lines in order,
which is the equivalence RFC 3261 7.3.1 defines between one line and many.
"""

import re
from collections.abc import Iterable, Iterator

from telportal.sip.errors import SipParseError
from telportal.sip.grammar import TOKEN_RE, excerpt, split_list

# RFC 3261 7.3.3 and the IANA registry of compact forms.
COMPACT_FORMS: dict[str, str] = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}

# Header fields whose value is a list (`#element` in RFC 3261's ABNF and extensions).
# Only these are split on commas: elsewhere a comma is ordinary text (Date, Subject,
# Authorization's digest parameters, free-form extension headers).
LIST_HEADERS: frozenset[str] = frozenset(
    {
        "accept",
        "accept-contact",
        "accept-encoding",
        "accept-language",
        "alert-info",
        "allow",
        "allow-events",
        "call-info",
        "contact",
        "content-encoding",
        "content-language",
        "error-info",
        "history-info",
        "in-reply-to",
        "p-asserted-identity",
        "p-associated-uri",
        "p-preferred-identity",
        "path",
        "proxy-require",
        "reason",
        "record-route",
        "reject-contact",
        "request-disposition",
        "require",
        "route",
        "security-client",
        "security-server",
        "security-verify",
        "service-route",
        "supported",
        "unsupported",
        "via",
        "warning",
    }
)

# Names whose conventional spelling is not plain capitalization of each word.
_SPELLINGS: dict[str, str] = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "mime-version": "MIME-Version",
    "www-authenticate": "WWW-Authenticate",
    "rack": "RAck",
    "rseq": "RSeq",
    "p-asserted-identity": "P-Asserted-Identity",
    "sip-etag": "SIP-ETag",
    "sip-if-match": "SIP-If-Match",
}

_FORBIDDEN_VALUE_RE = re.compile(r"[\r\n]")


_COMMON_NAMES = (
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
    "Allow-Events", "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
    "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-Type", "CSeq", "Date", "Error-Info", "Event", "Expires", "From", "History-Info",
    "Identity", "In-Reply-To", "Max-Forwards", "MIME-Version", "Min-Expires", "Min-SE",
    "Organization", "P-Asserted-Identity", "P-Preferred-Identity", "Path", "Priority",
    "Privacy", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Require", "RAck", "Reason",
    "Record-Route", "Refer-To", "Referred-By", "Replaces", "Reply-To", "Require",
    "Retry-After", "Route", "RSeq", "Server", "Service-Route", "Session-Expires", "Subject",
    "Subscription-State", "Supported", "Timestamp", "To", "Unsupported", "User-Agent", "Via",
    "Warning", "WWW-Authenticate",
)  # fmt: skip


def _spellings(name: str) -> set[str]:
    return {
        name,
        name.lower(),
        name.upper(),
        "-".join(part.capitalize() for part in name.split("-")),
    }


# Names as they are commonly written, mapped to their key: a dictionary hit replaces a
# regex check and a lower() on almost every line of almost every message.
_KEYS_BY_SPELLING: dict[str, str] = {
    spelling: COMPACT_FORMS.get(spelling.lower(), spelling.lower())
    for name in (*_COMMON_NAMES, *COMPACT_FORMS)
    for spelling in _spellings(name)
}


def header_key(name: str) -> str:
    """The canonical lookup key: lower case, compact form expanded."""
    key = _KEYS_BY_SPELLING.get(name)
    if key is not None:
        return key
    key = name.lower()
    return COMPACT_FORMS.get(key, key)


def full_name(name: str) -> str:
    """The conventional spelling of a header name ("i" and "CALL-ID" give "Call-ID")."""
    key = header_key(name)
    spelled = _SPELLINGS.get(key)
    if spelled is not None:
        return spelled
    return "-".join(part.capitalize() for part in key.split("-"))


class Headers:
    """Ordered header field lines with case-insensitive, compact-form-aware lookup."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        # (key, name as written, value): the key is computed once, at insertion.
        self._fields: list[tuple[str, str, str]] = []
        for name, value in fields:
            self.add(name, value)

    @classmethod
    def _trusted(cls, fields: list[tuple[str, str, str]]) -> "Headers":
        """Wrap lines the message parser has already checked, without copying them."""
        headers = cls.__new__(cls)
        headers._fields = fields
        return headers

    def add(self, name: str, value: str) -> None:
        """Append a field line."""
        _check_field(name, value)
        self._fields.append((header_key(name), name, value))

    def set(self, name: str, value: str) -> None:
        """Replace every line of this field by one line, at the position of the first."""
        _check_field(name, value)
        key = header_key(name)
        fields: list[tuple[str, str, str]] = []
        placed = False
        for field in self._fields:
            if field[0] != key:
                fields.append(field)
            elif not placed:
                fields.append((key, field[1], value))
                placed = True
        if not placed:
            fields.append((key, name, value))
        self._fields = fields

    def remove(self, name: str) -> int:
        """Remove every line of this field; returns how many there were."""
        key = header_key(name)
        kept = [field for field in self._fields if field[0] != key]
        removed = len(self._fields) - len(kept)
        self._fields = kept
        return removed

    def get(self, name: str) -> str | None:
        """The value of the first line of this field, unsplit; None when absent."""
        key = header_key(name)
        for field in self._fields:
            if field[0] == key:
                return field[2]
        return None

    def get_all(self, name: str) -> list[str]:
        """Every value of this field: one per line, list fields split on their commas."""
        key = header_key(name)
        if key in LIST_HEADERS:
            values: list[str] = []
            for field in self._fields:
                if field[0] == key:
                    values += split_list(field[2])
            return values
        return [field[2] for field in self._fields if field[0] == key]

    def lines(self, name: str) -> list[tuple[str, str]]:
        """The (name as written, value) lines of this field, unsplit."""
        key = header_key(name)
        return [(field[1], field[2]) for field in self._fields if field[0] == key]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = header_key(name)
        return any(field[0] == key for field in self._fields)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        """(name as written, value) for every line, in order."""
        return ((field[1], field[2]) for field in self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [field[1:] for field in self._fields] == [field[1:] for field in other._fields]

    __hash__ = None  # type: ignore[assignment]  # mutable, like list

    def copy(self) -> "Headers":
        return Headers._trusted(list(self._fields))

    def keyed_lines(self) -> list[tuple[str, str, str]]:
        """(canonical key, name as written, value) for every line; for serializers."""
        return list(self._fields)

    def __repr__(self) -> str:
        return f"Headers({[(field[1], field[2]) for field in self._fields]!r})"


def _check_field(name: str, value: str) -> None:
    # Programming errors, not parse errors: a CR or LF here would inject header lines.
    if TOKEN_RE.fullmatch(name) is None:
        raise ValueError(f"header name {name!r} is not a token")
    if _FORBIDDEN_VALUE_RE.search(value) is not None:
        raise ValueError(f"header value {value!r} contains CR or LF")


_FOLD_RE = re.compile(r"[ \t]*\r\n[ \t]+")


def parse_header_section(text: str) -> Headers:
    """Parse CRLF-separated header lines (the section between start line and empty line).

    Continuation lines (starting with SP or HTAB, RFC 3261 7.3.1) are unfolded into the
    line before them with a single SP; names may be followed by whitespace before the
    colon (HCOLON); values are stored without surrounding whitespace.
    """
    if not text:
        return Headers()
    if "\r\n " in text or "\r\n\t" in text:
        text = _FOLD_RE.sub(" ", text)
    fields: list[tuple[str, str, str]] = []
    keys = _KEYS_BY_SPELLING
    for line in text.split("\r\n"):
        colon = line.find(":")
        if colon > 0:
            name = line[:colon]
            key = keys.get(name)
            if key is not None:
                fields.append((key, name, line[colon + 1 :].strip(" \t")))
                continue
        fields.append(_parse_field_line(line))
    return Headers._trusted(fields)


def _parse_field_line(line: str) -> tuple[str, str, str]:
    if line[:1] in (" ", "\t"):
        raise SipParseError("header section starts with a continuation line")
    colon = line.find(":")
    if colon < 0:
        raise SipParseError(f"header line without a colon: {excerpt(line)}")
    name = line[:colon].rstrip(" \t")
    if TOKEN_RE.fullmatch(name) is None:
        raise SipParseError(f"bad header name {excerpt(name)}")
    return header_key(name), name, line[colon + 1 :].strip(" \t")
