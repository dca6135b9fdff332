"""Evaluating expression trees against a call's variables.

Rules at run time (the type checker has already caught what it can):
- `and`, `or` short-circuit; in them and in `not`, null counts as false;
- `==` between values of different types is false (a number never equals a string);
- ordering, arithmetic and functions on the wrong types, or on null, raise EvalError,
  as do division by zero and numbers or texts beyond the limits in `values`.
The interpreter turns an EvalError into null (and a condition into false), so a missing
value never breaks a call.
"""

from collections.abc import Callable
from decimal import Decimal, DecimalException

from telportal.ivr.expr.functions import FUNCTIONS
from telportal.ivr.expr.nodes import Binary, Call, Expr, ListExpr, Literal, Unary, Variable
from telportal.ivr.expr.values import (
    DECIMALS,
    EvalError,
    Value,
    checked_number,
    checked_text,
    type_name,
)

Lookup = Callable[[tuple[str, ...]], Value]


def evaluate(expr: Expr, lookup: Lookup) -> Value:  # noqa: PLR0911 - one case per node type
    """The value of `expr`; `lookup` gives a variable's value from its dotted path."""
    if isinstance(expr, Literal):
        return expr.value
    if isinstance(expr, Variable):
        return lookup(expr.path)
    if isinstance(expr, ListExpr):
        return tuple(evaluate(item, lookup) for item in expr.items)
    if isinstance(expr, Unary):
        operand = evaluate(expr.operand, lookup)
        if expr.op == "not":
            return not truth(operand)
        return checked_number(-_number(operand, "-"))
    if isinstance(expr, Binary):
        return _binary(expr, lookup)
    return _call(expr, lookup)


def truth(value: Value) -> bool:
    """A condition's verdict: true or false, with null as false."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise EvalError(f"a condition must be true or false, not a {type_name(value)}")


def equal(left: Value, right: Value) -> bool:
    return type_name(left) == type_name(right) and left == right


def _number(value: Value, op: str) -> Decimal:
    if not isinstance(value, Decimal):
        raise EvalError(f"'{op}' needs numbers, not a {type_name(value)}")
    return value


def _binary(expr: Binary, lookup: Lookup) -> Value:
    op = expr.op
    left = evaluate(expr.left, lookup)
    if op == "and":
        return truth(left) and truth(evaluate(expr.right, lookup))
    if op == "or":
        return truth(left) or truth(evaluate(expr.right, lookup))
    right = evaluate(expr.right, lookup)
    if op in _COMPARE:
        return _COMPARE[op](left, right)
    if op == "+" and isinstance(left, str) and isinstance(right, str):
        return checked_text(left + right)
    try:
        result = _ARITHMETIC[op](_number(left, op), _number(right, op))
    except DecimalException as exc:
        raise EvalError(f"'{op}' failed: {type(exc).__name__}") from None
    return checked_number(result)


def _sign(left: Value, right: Value) -> int:
    if isinstance(left, Decimal) and isinstance(right, Decimal):
        return (left > right) - (left < right)
    if isinstance(left, str) and isinstance(right, str):
        return (left > right) - (left < right)
    raise EvalError(f"cannot order a {type_name(left)} and a {type_name(right)}")


_COMPARE: dict[str, Callable[[Value, Value], bool]] = {
    "==": equal,
    "!=": lambda a, b: not equal(a, b),
    "in": lambda a, b: _contains(b, a),
    "not in": lambda a, b: not _contains(b, a),
    "<": lambda a, b: _sign(a, b) < 0,
    "<=": lambda a, b: _sign(a, b) <= 0,
    ">": lambda a, b: _sign(a, b) > 0,
    ">=": lambda a, b: _sign(a, b) >= 0,
}
_ARITHMETIC: dict[str, Callable[[Decimal, Decimal], Decimal]] = {
    "+": DECIMALS.add,
    "-": DECIMALS.subtract,
    "*": DECIMALS.multiply,
    "/": DECIMALS.divide,
    "%": DECIMALS.remainder,
}


def _contains(container: Value, item: Value) -> bool:
    if isinstance(container, tuple):
        return any(equal(item, member) for member in container)
    if isinstance(container, str) and isinstance(item, str):
        return item in container
    raise EvalError(f"'in' needs a list or text on its right, not a {type_name(container)}")


def _call(expr: Call, lookup: Lookup) -> Value:
    function = FUNCTIONS.get(expr.function)
    if function is None:
        raise EvalError(f"unknown function {expr.function}()")
    args = [evaluate(arg, lookup) for arg in expr.args]
    try:
        return function.run(args)
    except DecimalException as exc:
        raise EvalError(f"{expr.function}() failed: {type(exc).__name__}") from None
