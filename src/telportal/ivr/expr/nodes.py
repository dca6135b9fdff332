"""The syntax tree of an expression. Every node keeps the offset it was written at."""

from dataclasses import dataclass
from decimal import Decimal

LiteralValue = Decimal | str | bool | None


@dataclass(frozen=True, slots=True)
class Literal:
    value: LiteralValue
    offset: int


@dataclass(frozen=True, slots=True)
class Variable:
    """A dotted name such as `vars.account`, `now.hour` or `caller`."""

    path: tuple[str, ...]
    offset: int

    @property
    def name(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class ListExpr:
    items: tuple["Expr", ...]
    offset: int


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "not" or "-"
    operand: "Expr"
    offset: int


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # and or == != < <= > >= in "not in" + - * / %
    left: "Expr"
    right: "Expr"
    offset: int


@dataclass(frozen=True, slots=True)
class Call:
    function: str
    args: tuple["Expr", ...]
    offset: int


Expr = Literal | Variable | ListExpr | Unary | Binary | Call
