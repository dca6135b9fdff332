"""A Pratt parser for flow expressions; no Python eval, compile or ast is involved.

Binding powers, loosest first:

    or                      10   left-associative
    and                     20   left-associative
    not (prefix)            30
    == != < <= > >= in      40   not associative: `a < b < c` is an error
    not in                  40
    + -                     50   left-associative
    * / %                   60   left-associative
    - (prefix)              70

Primaries are literals (numbers, strings, true, false, null), lists `[a, b]`,
parentheses, dotted variable names (`vars.account`) and calls of named functions
(`len(digits)`). Only a bare name can be called and only variables have fields, so
`"x".__class__` or `f()()` are syntax errors. Nesting is limited to `MAX_DEPTH`.
"""

from decimal import Decimal

from telportal.ivr.expr.lexer import ExprSyntaxError, Kind, Token, tokenize
from telportal.ivr.expr.nodes import Binary, Call, Expr, ListExpr, Literal, Unary, Variable
from telportal.ivr.expr.values import MAX_MAGNITUDE

MAX_DEPTH = 32
MAX_LIST_ITEMS = 100
MAX_ARGS = 8
_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">=", "in"})
_BINARY_POWER = {
    "or": 10,
    "and": 20,
    **dict.fromkeys(_COMPARISONS, 40),
    "+": 50,
    "-": 50,
    "*": 60,
    "/": 60,
    "%": 60,
}
_NOT_POWER = 30
_NEGATE_POWER = 70
_CONSTANTS: dict[str, bool | None] = {"true": True, "false": False, "null": None}


def parse_expr(source: str) -> Expr:
    """The tree for `source`; raises ExprSyntaxError with the offset of the problem."""
    parser = _Parser(tokenize(source))
    if parser.peek.kind is Kind.END:
        raise ExprSyntaxError("empty expression", 0)
    expr = parser.expression(0)
    token = parser.peek
    if token.kind is not Kind.END:
        raise ExprSyntaxError(f"unexpected {_describe(token)}", token.offset)
    return expr


def _describe(token: Token) -> str:
    if token.kind is Kind.END:
        return "end of expression"
    if token.kind is Kind.STRING:
        return "string"
    return f"'{token.text}'"


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    @property
    def peek(self) -> Token:
        return self.tokens[self.pos]

    def next(self) -> Token:
        token = self.tokens[self.pos]
        if token.kind is not Kind.END:
            self.pos += 1
        return token

    def expect(self, text: str) -> Token:
        token = self.next()
        if token.kind is not Kind.OP or token.text != text:
            raise ExprSyntaxError(f"expected '{text}' but found {_describe(token)}", token.offset)
        return token

    def _infix(self) -> tuple[str, int] | None:
        """The binary operator at the cursor and its power, without consuming it."""
        token = self.peek
        if token.kind is Kind.OP or token.kind is Kind.KEYWORD:
            if token.text == "not" and self._at_not_in():
                return "not in", 40
            power = _BINARY_POWER.get(token.text)
            if power is not None:
                return token.text, power
        return None

    def _at_not_in(self) -> bool:
        after = self.tokens[self.pos + 1]
        return after.kind is Kind.KEYWORD and after.text == "in"

    def expression(self, min_power: int) -> Expr:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprSyntaxError(f"expression nested deeper than {MAX_DEPTH}", self.peek.offset)
        left = self.prefix()
        last_comparison: str | None = None
        while (infix := self._infix()) is not None:
            op, power = infix
            if power <= min_power:
                break
            token = self.next()
            if op == "not in":
                self.next()
            if power == 40:
                if last_comparison is not None:
                    raise ExprSyntaxError(
                        f"'{last_comparison}' and '{op}' cannot be chained; use 'and'",
                        token.offset,
                    )
                last_comparison = op
            else:
                last_comparison = None
            right = self.expression(power)
            left = Binary(op, left, right, token.offset)
        self.depth -= 1
        return left

    def prefix(self) -> Expr:  # noqa: PLR0911 - one return per kind of primary
        token = self.next()
        if token.kind is Kind.NUMBER:
            value = Decimal(token.text)
            if value >= MAX_MAGNITUDE:
                raise ExprSyntaxError("number too large (limit 10^15)", token.offset)
            return Literal(value, token.offset)
        if token.kind is Kind.STRING:
            return Literal(token.text, token.offset)
        if token.kind is Kind.KEYWORD:
            if token.text in _CONSTANTS:
                return Literal(_CONSTANTS[token.text], token.offset)
            if token.text == "not":
                return Unary("not", self.expression(_NOT_POWER), token.offset)
        if token.kind is Kind.NAME:
            return self.name(token)
        if token.kind is Kind.OP:
            if token.text == "-":
                return Unary("-", self.expression(_NEGATE_POWER), token.offset)
            if token.text == "(":
                inner = self.expression(0)
                self.expect(")")
                return inner
            if token.text == "[":
                return ListExpr(self.sequence("]", MAX_LIST_ITEMS), token.offset)
        raise ExprSyntaxError(f"unexpected {_describe(token)}", token.offset)

    def name(self, first: Token) -> Expr:
        if self.peek.kind is Kind.OP and self.peek.text == "(":
            self.next()
            return Call(first.text, self.sequence(")", MAX_ARGS), first.offset)
        path = [first.text]
        while self.peek.kind is Kind.OP and self.peek.text == ".":
            self.next()
            part = self.next()
            if part.kind is not Kind.NAME:
                raise ExprSyntaxError(
                    f"expected a field name after '.' but found {_describe(part)}", part.offset
                )
            path.append(part.text)
        if self.peek.kind is Kind.OP and self.peek.text == "(":
            raise ExprSyntaxError("only functions can be called", self.peek.offset)
        return Variable(tuple(path), first.offset)

    def sequence(self, close: str, limit: int) -> tuple[Expr, ...]:
        items: list[Expr] = []
        if self.peek.kind is Kind.OP and self.peek.text == close:
            self.next()
            return ()
        while True:
            items.append(self.expression(0))
            if len(items) > limit:
                raise ExprSyntaxError(f"more than {limit} items", self.peek.offset)
            token = self.next()
            if token.kind is Kind.OP and token.text == close:
                return tuple(items)
            if token.kind is not Kind.OP or token.text != ",":
                raise ExprSyntaxError(
                    f"expected ',' or '{close}' but found {_describe(token)}", token.offset
                )
