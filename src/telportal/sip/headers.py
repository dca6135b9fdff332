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
from typing import Any, final

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


@final
class Headers:
    """Ordered header field lines with case-insensitive, compact-form-aware lookup.

    Lookups go through an index, built with the lines (or on the first lookup after a
    change): the value of the first line of each field by canonical key, and the keys
    of the fields written on several lines. Reading a field, or finding it absent,
    then costs one dictionary lookup instead of a scan of every line, and the index
    (strings only) is no work for the garbage collector.

    `memo` holds what the typed accessors of `Request` and `Response` parsed from these
    lines (message.py), by canonical key, so that a field read many times on its way
    through the stack is parsed once; changing a field's lines forgets what was parsed
    from it. Parsed values are shared: treat them as values, as URIs are.
    """

    __slots__ = ("_fields", "_index", "_multi", "_wire", "memo")

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        # (key, name as written, value): the key is computed once, at insertion.
        self._fields: list[tuple[str, str, str]] = []
        # First value by key, and the keys with more than one line; None: to rebuild.
        self._index: dict[str, str] | None = {}
        self._multi: set[str] | None = None
        # The serialized lines, and the body length their Content-Length was written for.
        self._wire: tuple[int, str] | None = None
        self.memo: dict[str, Any] = {}
        for name, value in fields:
            self.add(name, value)

    @classmethod
    def trusted(
        cls,
        fields: list[tuple[str, str, str]],
        index: dict[str, str] | None = None,
        multi: set[str] | None = None,
    ) -> "Headers":
        """Wrap checked lines (`checked_line`, or lines of another Headers) as they are.

        For the SIP layer's own builders: the list is taken, not copied.
        """
        headers = Headers()
        headers._fields = fields
        headers._index = index
        headers._multi = multi
        headers._wire = None
        headers.memo = {}
        return headers

    def _build_index(self) -> dict[str, str]:
        index: dict[str, str] = {}
        multi: set[str] | None = None
        for key, _, value in self._fields:
            if key in index:
                if multi is None:
                    multi = set()
                multi.add(key)
            else:
                index[key] = value
        self._index, self._multi = index, multi
        return index

    def add(self, name: str, value: str) -> None:
        """Append a field line."""
        key = _checked_key(name, value)
        self._fields.append((key, name, value))
        index = self._index
        if index is not None:
            if key in index:
                if self._multi is None:
                    self._multi = set()
                self._multi.add(key)
            else:
                index[key] = value
        self._wire = None
        if self.memo:
            self.memo.pop(key, None)

    def set(self, name: str, value: str) -> None:
        """Replace every line of this field by one line, at the position of the first."""
        key = _checked_key(name, value)
        fields = self._fields
        for position, field in enumerate(fields):
            if field[0] == key:
                fields[position] = (key, field[1], value)
                # Later lines of the same field go; the common case has none.
                rest = position + 1
                if self._index is None or (self._multi is not None and key in self._multi):
                    fields[rest:] = [later for later in fields[rest:] if later[0] != key]
                break
        else:
            fields.append((key, name, value))
        if self._index is not None:
            self._index[key] = value
        if self._multi is not None:
            self._multi.discard(key)
        self._wire = None
        if self.memo:
            self.memo.pop(key, None)

    def remove(self, name: str) -> int:
        """Remove every line of this field; returns how many there were."""
        key = header_key(name)
        kept = [field for field in self._fields if field[0] != key]
        removed = len(self._fields) - len(kept)
        if removed:
            self._fields = kept
            if self._index is not None:
                del self._index[key]
            if self._multi is not None:
                self._multi.discard(key)
            self._wire = None
        if self.memo:
            self.memo.pop(key, None)
        return removed

    def first(self, key: str) -> str | None:
        """The value of the first line with this canonical key, unsplit; None if none."""
        index = self._index
        if index is None:
            index = self._build_index()
        return index.get(key)

    def several(self, key: str) -> bool:
        """Whether the field with this canonical key is written on more than one line."""
        if self._index is None:
            self._build_index()
        return self._multi is not None and key in self._multi

    def get(self, name: str) -> str | None:
        """The value of the first line of this field, unsplit; None when absent."""
        return self.first(header_key(name))

    def get_all(self, name: str) -> list[str]:
        """Every value of this field: one per line, list fields split on their commas."""
        return self.values_of(header_key(name))

    def values_of(self, key: str) -> list[str]:
        """get_all by canonical key (`header_key`), for callers that have one already."""
        value = self.first(key)
        if value is None:
            return []
        if self._multi is not None and key in self._multi:
            values = [field[2] for field in self._fields if field[0] == key]
            if key not in LIST_HEADERS:
                return values
            elements: list[str] = []
            for each in values:
                elements += split_list(each)
            return elements
        if key in LIST_HEADERS:
            return split_list(value)
        return [value]

    def lines(self, name: str) -> list[tuple[str, str]]:
        """The (name as written, value) lines of this field, unsplit."""
        key = header_key(name)
        return [(field[1], field[2]) for field in self._fields if field[0] == key]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return self.first(header_key(name)) is not None

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
        headers = Headers.trusted(list(self._fields))
        headers._wire = self._wire
        headers.memo = dict(self.memo)
        return headers

    def keyed_lines(self) -> list[tuple[str, str, str]]:
        """(canonical key, name as written, value) for every line; for serializers."""
        return list(self._fields)

    def wire(self, body_length: int) -> str:
        """Every line as `Name: value` CRLF, in order, for a body of body_length octets.

        One Content-Length, always true to the body, in the place it had (appended when
        there was none). Kept until a line changes: a message is sent, retransmitted and
        handed on as bytes several times.
        """
        wire = self._wire
        if wire is not None and wire[0] == body_length:
            return wire[1]
        parts: list[str] = []
        length_written = False
        for key, name, value in self._fields:
            if key == "content-length":
                if length_written:
                    continue
                length_written = True
                value = str(body_length)  # noqa: PLW2901
            parts += (name, ": ", value, "\r\n")
        if not length_written:
            parts.append(f"Content-Length: {body_length}\r\n")
        text = "".join(parts)
        self._wire = (body_length, text)
        return text

    def __repr__(self) -> str:
        return f"Headers({[(field[1], field[2]) for field in self._fields]!r})"


def checked_line(name: str, value: str) -> tuple[str, str, str]:
    """(key, name, value) for `Headers.trusted`; ValueError as for `Headers.add`."""
    return _checked_key(name, value), name, value


def _checked_key(name: str, value: str) -> str:
    """The key of a field line about to be stored; raises ValueError for a bad line."""
    # Programming errors, not parse errors: a CR or LF here would inject header lines.
    key = _KEYS_BY_SPELLING.get(name)
    if key is None:
        if TOKEN_RE.fullmatch(name) is None:
            raise ValueError(f"header name {name!r} is not a token")
        key = header_key(name)
    if "\r" in value or "\n" in value:
        raise ValueError(f"header value {value!r} contains CR or LF")
    return key


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
    index: dict[str, str] = {}
    multi: set[str] | None = None
    keys = _KEYS_BY_SPELLING
    for line in text.split("\r\n"):
        name, colon, value = line.partition(":")
        key = keys.get(name) if colon else None
        if key is None:
            field = _parse_field_line(line)
            key, value = field[0], field[2]
            fields.append(field)
        else:
            value = value.strip(" \t")
            fields.append((key, name, value))
        if key in index:
            if multi is None:
                multi = set()
            multi.add(key)
        else:
            index[key] = value
    return Headers.trusted(fields, index, multi)


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
