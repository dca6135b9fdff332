"""Run-time values of expressions and the limits that keep them small.

Numbers are `Decimal`, never float: a balance of 0.1 + 0.2 must be 0.3 when it is
spoken to a caller. Magnitudes are capped so that a loop of `set x = x * x` cannot build
a number with millions of digits, and strings are capped for the same reason.
"""

from decimal import Context, Decimal, DivisionByZero, InvalidOperation, Overflow

Value = Decimal | str | bool | None | tuple["Value", ...]

MAX_MAGNITUDE = Decimal(10) ** 15
MAX_TEXT_CHARS = 10_000
# Traps turn every odd case into an exception the evaluator reports as an EvalError.
DECIMALS = Context(prec=28, Emax=99, Emin=-99, traps=[InvalidOperation, DivisionByZero, Overflow])


class EvalError(ValueError):
    """An expression failed at run time (a null in arithmetic, a division by zero...)."""


def checked_number(value: Decimal) -> Decimal:
    if not value.is_finite() or abs(value) >= MAX_MAGNITUDE:
        raise EvalError("number too large")
    return value


def checked_text(value: str) -> str:
    if len(value) > MAX_TEXT_CHARS:
        raise EvalError(f"text longer than {MAX_TEXT_CHARS} characters")
    return value


def format_number(value: Decimal) -> str:
    """`1234.50` -> "1234.5", `1E+3` -> "1000": how numbers look inside text."""
    text = format(value.normalize(DECIMALS), "f")
    return "0" if text in ("-0", "") else text


def to_text(value: Value) -> str:
    """The text form used by `string()` and by `{...}` in prompts."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format_number(value)
    if isinstance(value, tuple):
        return ", ".join(to_text(item) for item in value)
    return value


def type_name(value: Value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Decimal):
        return "number"
    if isinstance(value, tuple):
        return "list"
    return "string"
