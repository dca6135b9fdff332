"""Semicolon parameters of header fields: `;name=value;flag` (RFC 3261 section 25.1).

The same `Params` container also holds URI parameters, which follow a stricter grammar
parsed in `uri.py`. Names compare case-insensitively; values are kept as written, with
quotes, because whether a value's case matters depends on the parameter.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from telportal.sip.errors import SipParseError
from telportal.sip.grammar import TOKEN_CHARS, excerpt

# generic-param = token [ EQUAL gen-value ];  gen-value = token / host / quoted-string
# SEMI and EQUAL allow whitespace on both sides (SWS).
_PARAM_RE = re.compile(
    rf"[ \t]*;[ \t]*([{TOKEN_CHARS}]+)"
    rf"(?:[ \t]*=[ \t]*([{TOKEN_CHARS}:\[\]]+|\"(?:[^\"\\\r\n]|\\[^\r\n])*\"))?(?![ \t]*=)[ \t]*"
)
_EMPTY_PARAM_RE = re.compile(r"[ \t]*;[ \t]*(?:;|$)")


@dataclass(frozen=True, slots=True)
class Params:
    """An ordered, immutable list of parameters; a flag parameter has the value None."""

    items: tuple[tuple[str, str | None], ...] = ()
    _text: str | None = field(default=None, init=False, repr=False, compare=False)

    # Written out, not generated: see decision 0021 (a compiled dataclass's own __init__
    # runs interpreted). The fields above and the parameters here must agree.
    def __init__(self, items: tuple[tuple[str, str | None], ...] = ()) -> None:
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "_text", None)

    def get(self, name: str) -> str | None:
        """The value as written; None when absent or a flag (test flags with `in`)."""
        key = name.lower()
        for item_name, value in self.items:
            # Names are nearly always written as asked for: skip the lower() then.
            if item_name == name or item_name.lower() == key:
                return value
        return None

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = name.lower()
        return any(item_name == name or item_name.lower() == key for item_name, _ in self.items)

    def __iter__(self) -> Iterator[tuple[str, str | None]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)

    def with_param(self, name: str, value: str | None = None) -> "Params":
        """A copy where name has this value, in its old place or appended."""
        key = name.lower()
        items = list(self.items)
        for index, (item_name, _) in enumerate(items):
            if item_name.lower() == key:
                items[index] = (item_name, value)
                return Params(tuple(items))
        items.append((name, value))
        return Params(tuple(items))

    def without(self, name: str) -> "Params":
        key = name.lower()
        return Params(tuple(item for item in self.items if item[0].lower() != key))

    def __str__(self) -> str:
        text = self._text
        if text is None:
            text = "".join(
                f";{name}" if value is None else f";{name}={value}" for name, value in self.items
            )
            object.__setattr__(self, "_text", text)  # frozen: a cache, not a change
        return text


NO_PARAMS = Params()


def parse_params(text: str, start: int = 0) -> Params:
    """Parse `*( SEMI generic-param )` from text[start:] to the end of text."""
    items: list[tuple[str, str | None]] = []
    position = start
    end = len(text)
    match_param = _PARAM_RE.match
    while position < end:
        match = match_param(text, position)
        if match is None:
            if not text[position:].strip(" \t"):
                break
            raise SipParseError(_diagnose(text, position))
        items.append((match.group(1), match.group(2)))
        position = match.end()
    return Params(tuple(items)) if items else NO_PARAMS


def _diagnose(text: str, position: int) -> str:
    rest = text[position:].lstrip(" \t")
    if not rest.startswith(";"):
        return f"unexpected text {excerpt(rest)} where ';' was expected"
    if _EMPTY_PARAM_RE.match(rest):
        return "empty parameter"
    value_start = rest.find("=")
    if value_start >= 0 and rest[value_start + 1 :].lstrip(" \t").startswith('"'):
        return "unterminated quoted string"
    return f"bad parameter {excerpt(rest)}"
