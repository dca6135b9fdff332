"""The functions flow expressions may call: their signatures for the checker and their code.

Every function is total over its declared types and bounded in cost by the text limits of
`telportal.ivr.expr.values`; a null argument (a variable never set) is an EvalError, except
for `string`, `coalesce` and `number`, which exist to handle missing or odd values.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from telportal.ivr.expr.types import ANY, BOOL, NULL, NUMBER, STRING, Type, fits, unify
from telportal.ivr.expr.values import (
    DECIMALS,
    MAX_MAGNITUDE,
    EvalError,
    Value,
    checked_number,
    checked_text,
    to_text,
)

MAX_ROUND_PLACES = 6


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    params: tuple[tuple[Type, ...], ...]  # the types each parameter accepts
    required: int  # how many parameters must be given
    result: Type | None  # None: the unified type of the arguments (coalesce)
    run: Callable[[Sequence[Value]], Value]
    variadic: bool = False  # the last parameter repeats

    def check_args(self, args: Sequence[Type]) -> str | None:
        """A message if `args` do not fit the signature."""
        most = None if self.variadic else len(self.params)
        if len(args) < self.required or (most is not None and len(args) > most):
            return f"{self.name}() takes {self._arity()} ({len(args)} given)"
        for i, found in enumerate(args):
            accepted = self.params[min(i, len(self.params) - 1)]
            if not any(fits(found, t) for t in accepted):
                wanted = " or ".join(f"a {t}" for t in accepted)
                return f"{self.name}() argument {i + 1} must be {wanted}, not a {found}"
        return None

    def result_type(self, args: Sequence[Type]) -> Type:
        if self.result is not None:
            return self.result
        joined: Type | None = NULL
        for found in args:
            joined = unify(joined, found) if joined is not None else None
        return ANY if joined is None or joined == NULL else joined

    def _arity(self) -> str:
        if self.variadic:
            return f"{self.required} or more arguments"
        if self.required == len(self.params):
            return f"{self.required} argument{'s' if self.required != 1 else ''}"
        return f"{self.required} to {len(self.params)} arguments"


def _text(value: Value, function: str) -> str:
    if not isinstance(value, str):
        raise EvalError(f"{function}() needs text, got {to_text(value) or 'null'}")
    return value


def _number(value: Value, function: str) -> Decimal:
    if not isinstance(value, Decimal):
        raise EvalError(f"{function}() needs a number, got {to_text(value) or 'null'}")
    return value


def _whole(value: Value, function: str) -> int:
    number = _number(value, function)
    if number != number.to_integral_value():
        raise EvalError(f"{function}() needs a whole number, got {number}")
    return int(number)


def _len(args: Sequence[Value]) -> Value:
    value = args[0]
    if isinstance(value, str | tuple):
        return Decimal(len(value))
    raise EvalError("len() needs text or a list")


def _substr(args: Sequence[Value]) -> Value:
    text = _text(args[0], "substr")
    start = max(0, _whole(args[1], "substr"))
    if len(args) > 2:
        return text[start : start + max(0, _whole(args[2], "substr"))]
    return text[start:]


def _to_number(args: Sequence[Value]) -> Value:
    value = args[0]
    if isinstance(value, Decimal):
        return value
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        return None
    if not number.is_finite() or abs(number) >= MAX_MAGNITUDE:
        return None
    return number


def _round(args: Sequence[Value]) -> Value:
    number = _number(args[0], "round")
    places = _whole(args[1], "round") if len(args) > 1 else 0
    if not 0 <= places <= MAX_ROUND_PLACES:
        raise EvalError(f"round() keeps 0 to {MAX_ROUND_PLACES} places, not {places}")
    return number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP, context=DECIMALS)


def _extreme(
    pick: Callable[[list[Decimal]], Decimal], name: str
) -> Callable[[Sequence[Value]], Value]:
    def run(args: Sequence[Value]) -> Value:
        return pick([_number(arg, name) for arg in args])

    return run


def _coalesce(args: Sequence[Value]) -> Value:
    return next((arg for arg in args if arg is not None), None)


def _text_function(name: str, body: Callable[[str], str]) -> Function:
    return Function(name, ((STRING,),), 1, STRING, lambda a: checked_text(body(_text(a[0], name))))


def _predicate(name: str, body: Callable[[str, str], bool]) -> Function:
    return Function(
        name,
        ((STRING,), (STRING,)),
        2,
        BOOL,
        lambda a: body(_text(a[0], name), _text(a[1], name)),
    )


_ALL = (
    Function("len", ((STRING, Type("list", ANY)),), 1, NUMBER, _len),
    _predicate("startswith", str.startswith),
    _predicate("endswith", str.endswith),
    _predicate("contains", lambda text, part: part in text),
    _text_function("lower", str.lower),
    _text_function("upper", str.upper),
    _text_function("trim", str.strip),
    Function("substr", ((STRING,), (NUMBER,), (NUMBER,)), 2, STRING, _substr),
    Function("number", ((STRING, NUMBER),), 1, NUMBER, _to_number),
    Function("string", ((ANY,),), 1, STRING, lambda a: checked_text(to_text(a[0]))),
    Function("round", ((NUMBER,), (NUMBER,)), 1, NUMBER, _round),
    Function("abs", ((NUMBER,),), 1, NUMBER, lambda a: checked_number(abs(_number(a[0], "abs")))),
    Function("min", ((NUMBER,),), 1, NUMBER, _extreme(min, "min"), variadic=True),
    Function("max", ((NUMBER,),), 1, NUMBER, _extreme(max, "max"), variadic=True),
    Function("coalesce", ((ANY,),), 1, None, _coalesce, variadic=True),
)
FUNCTIONS: dict[str, Function] = {f.name: f for f in _ALL}
