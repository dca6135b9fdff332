"""Tokens of the flow expression language.

The language is deliberately small: numbers, strings, names, a few operators. Anything
else is a syntax error here, before a parser ever sees it. In particular:
- names cannot start with an underscore, so `__class__` and friends cannot be written;
- numbers are plain decimals (no exponents, no hex) of at most `MAX_NUMBER_CHARS`;
- whole expressions and string literals have length limits.
"""

from dataclasses import dataclass
from enum import Enum

MAX_SOURCE_CHARS = 2000
MAX_STRING_CHARS = 1000
MAX_NUMBER_CHARS = 24
KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
_OPERATORS = (
    "==",
    "!=",
    "<=",
    ">=",
    "<",
    ">",
    "+",
    "-",
    "*",
    "/",
    "%",
    "(",
    ")",
    "[",
    "]",
    ",",
    ".",
)
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t"}


class ExprSyntaxError(ValueError):
    """An expression cannot be read; `offset` is where, counted in characters."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


class Kind(Enum):
    NUMBER = "number"
    STRING = "string"
    NAME = "name"
    KEYWORD = "keyword"
    OP = "operator"
    END = "end"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str  # for STRING: the decoded value; otherwise the source text
    offset: int


def tokenize(source: str) -> list[Token]:
    if len(source) > MAX_SOURCE_CHARS:
        raise ExprSyntaxError(f"expression longer than {MAX_SOURCE_CHARS} characters", 0)
    tokens: list[Token] = []
    i = 0
    n = len(source)
    while i < n:
        ch = source[i]
        if ch in " \t\r\n":
            i += 1
        elif ch.isascii() and ch.isdigit():
            i = _number(source, i, tokens)
        elif ch in "\"'":
            i = _string(source, i, tokens)
        elif ch.isascii() and ch.isalpha():
            start = i
            while i < n and source[i].isascii() and (source[i].isalnum() or source[i] == "_"):
                i += 1
            word = source[start:i]
            tokens.append(Token(Kind.KEYWORD if word in KEYWORDS else Kind.NAME, word, start))
        else:
            op = next((op for op in _OPERATORS if source.startswith(op, i)), None)
            if op is None:
                raise ExprSyntaxError(f"unexpected character {ch!r}", i)
            tokens.append(Token(Kind.OP, op, i))
            i += len(op)
    tokens.append(Token(Kind.END, "", n))
    return tokens


def _number(source: str, start: int, tokens: list[Token]) -> int:
    i = start
    n = len(source)
    while i < n and source[i].isascii() and source[i].isdigit():
        i += 1
    if i + 1 < n and source[i] == "." and source[i + 1].isascii() and source[i + 1].isdigit():
        i += 1
        while i < n and source[i].isascii() and source[i].isdigit():
            i += 1
    if i < n and (source[i].isalpha() or source[i] == "_"):
        raise ExprSyntaxError(f"bad number {source[start : i + 1]!r}", start)
    if i - start > MAX_NUMBER_CHARS:
        raise ExprSyntaxError(f"number longer than {MAX_NUMBER_CHARS} characters", start)
    tokens.append(Token(Kind.NUMBER, source[start:i], start))
    return i


def _string(source: str, start: int, tokens: list[Token]) -> int:
    quote = source[start]
    chars: list[str] = []
    i = start + 1
    while i < len(source):
        ch = source[i]
        if ch == quote:
            tokens.append(Token(Kind.STRING, "".join(chars), start))
            return i + 1
        if ch == "\\":
            escaped = source[i + 1 : i + 2]
            if escaped not in _ESCAPES:
                raise ExprSyntaxError(f"unknown escape \\{escaped}", i)
            chars.append(_ESCAPES[escaped])
            i += 2
        else:
            chars.append(ch)
            i += 1
        if len(chars) > MAX_STRING_CHARS:
            raise ExprSyntaxError(f"string longer than {MAX_STRING_CHARS} characters", start)
    raise ExprSyntaxError("string is not closed", start)
