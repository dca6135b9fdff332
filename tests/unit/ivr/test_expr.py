"""The expression language: tokens, parsing, types, evaluation, and hostile input."""

import re
from decimal import Decimal

import pytest

from telportal.ivr.expr import (
    ANY,
    BOOL,
    NUMBER,
    STRING,
    Binary,
    Call,
    EvalError,
    ExprSyntaxError,
    ListExpr,
    Literal,
    TypeChecker,
    Unary,
    Value,
    Variable,
    evaluate,
    list_of,
    parse_expr,
    parse_template,
    to_text,
)
from telportal.ivr.expr.lexer import MAX_SOURCE_CHARS
from telportal.ivr.expr.parser import MAX_DEPTH

ENV: dict[tuple[str, ...], Value] = {
    ("caller",): "13912345678",
    ("digits",): "42",
    ("vars", "balance"): Decimal("1234.50"),
    ("vars", "name"): "Li",
    ("vars", "vip"): True,
    ("vars", "nothing"): None,
    ("now", "hour"): Decimal(9),
    ("vars", "big"): "x" * 4000,
}
TYPES = {
    "caller": STRING,
    "digits": STRING,
    "vars.balance": NUMBER,
    "vars.name": STRING,
    "vars.vip": BOOL,
    "vars.nothing": STRING,
    "now.hour": NUMBER,
}


def lookup(path: tuple[str, ...]) -> Value:
    if path not in ENV:
        raise EvalError(f"unknown {'.'.join(path)}")
    return ENV[path]


def ev(source: str) -> Value:
    return evaluate(parse_expr(source), lookup)


def type_of(source: str) -> tuple[str, list[str]]:
    checker = TypeChecker(TYPES)
    found = checker.check(parse_expr(source))
    return str(found), [issue.message for issue in checker.issues]


# -- parsing -----------------------------------------------------------------------------


def test_precedence_follows_the_table() -> None:
    tree = parse_expr("not a == 1 or b + 2 * 3 > 4 and c")
    assert isinstance(tree, Binary)
    assert tree.op == "or"
    left, right = tree.left, tree.right
    assert isinstance(left, Unary)
    assert left.op == "not"
    assert isinstance(left.operand, Binary)
    assert left.operand.op == "=="
    assert isinstance(right, Binary)
    assert right.op == "and"
    comparison = right.left
    assert isinstance(comparison, Binary)
    assert comparison.op == ">"
    assert isinstance(comparison.left, Binary)
    assert comparison.left.op == "+"
    assert isinstance(comparison.left.right, Binary)
    assert comparison.left.right.op == "*"


def test_primaries() -> None:
    assert parse_expr("vars.account") == Variable(("vars", "account"), 0)
    assert parse_expr('"a\\"b\\n"') == Literal('a"b\n', 0)
    assert parse_expr("[1, 'x']") == ListExpr((Literal(Decimal(1), 1), Literal("x", 4)), 0)
    assert parse_expr("len(digits)") == Call("len", (Variable(("digits",), 4),), 0)
    assert parse_expr("null") == Literal(None, 0)
    assert parse_expr("-3") == Unary("-", Literal(Decimal(3), 1), 0)
    assert parse_expr("digits not in ['1']").op == "not in"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("source", "offset", "message"),
    [
        ("", 0, "empty expression"),
        ("1 +", 3, "unexpected end of expression"),
        ("(1", 2, "expected ')' but found end of expression"),
        ("a < b < c", 6, "'<' and '<' cannot be chained; use 'and'"),
        ("a = 1", 2, "unexpected character '='"),
        ("vars.", 5, "expected a field name after '.' but found end of expression"),
        ("vars.x()", 6, "only functions can be called"),
        ("f()()", 3, "unexpected '('"),
        ("'open", 0, "string is not closed"),
        ("'bad \\q'", 5, "unknown escape \\q"),
        ("1 2", 2, "unexpected '2'"),
        ("12abc", 0, "bad number '12a'"),
        ("a ; b", 2, "unexpected character ';'"),
        ("len(1,)", 6, "unexpected ')'"),
    ],
)
def test_syntax_errors_name_the_offset(source: str, offset: int, message: str) -> None:
    with pytest.raises(ExprSyntaxError) as caught:
        parse_expr(source)
    assert (caught.value.offset, caught.value.message) == (offset, message)


@pytest.mark.parametrize(
    "source",
    [
        "vars.__class__",
        "().__class__",
        "''.__class__.__mro__",
        "caller.__len__()",
        "__import__('os')",
        "_private",
        "vars._x",
        "x.y.__globals__",
        "lambda: 1",
        "[x for x in y]",
        "caller[0]",
        "f(**kw)",
        "`id`",
        "1e400",
        "0x10",
        "1_000",
        "99999999999999999999999999",
    ],
)
def test_hostile_expressions_are_rejected_by_the_parser(source: str) -> None:
    with pytest.raises(ExprSyntaxError):
        parse_expr(source)


def test_nesting_and_length_are_limited() -> None:
    parse_expr("(" * (MAX_DEPTH - 1) + "1" + ")" * (MAX_DEPTH - 1))
    for deep in (
        "(" * 200 + "1" + ")" * 200,
        "not " * 200 + "true",
        "-" * 500 + "1",
        "[" * 100 + "]" * 100,
    ):
        with pytest.raises(ExprSyntaxError, match="nested deeper"):
            parse_expr(deep)
    with pytest.raises(ExprSyntaxError, match="longer than"):
        parse_expr("1 + " * MAX_SOURCE_CHARS + "1")
    with pytest.raises(ExprSyntaxError, match="more than 100 items"):
        parse_expr("[" + ", ".join(["1"] * 101) + "]")
    with pytest.raises(ExprSyntaxError, match="too large"):
        parse_expr("1000000000000000")
    assert parse_expr("999999999999999.5") == Literal(Decimal("999999999999999.5"), 0)


def test_long_left_chains_do_not_recurse() -> None:
    # Left-associative chains are loops in a Pratt parser, not recursion.
    tree = parse_expr(" + ".join(["1"] * 400))
    assert evaluate(tree, lookup) == Decimal(400)


# -- types -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("1 + 2", "number"),
        ("caller + '!'", "string"),
        ("len(caller) > 3 and vars.vip", "bool"),
        ("digits in ['1', '2']", "bool"),
        ("'3' in caller", "bool"),
        ("[1, 2]", "list of number"),
        ("[]", "list of any"),
        ("coalesce(vars.nothing, 'x')", "string"),
        ("number(digits) * 2", "number"),
        ("vars.nothing == null", "bool"),
        ("substr(caller, 0, 3)", "string"),
        ("round(vars.balance / 3, 2)", "number"),
        ("min(1, 2, now.hour)", "number"),
    ],
)
def test_well_typed_expressions(source: str, found: str) -> None:
    assert type_of(source) == (found, [])


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("caller == 1", "cannot compare a string with a number"),
        ("caller > 5", "cannot order a string and a number with '>'"),
        (
            "caller + 1",
            "'+' cannot take a string and a number: it can join two strings or add two numbers",
        ),
        ("caller * 2", "'*' cannot take a string and a number: it can only work on numbers"),
        ("-caller", "'-' needs a number, not a string"),
        ("not caller", "'not' needs a bool, not a string"),
        ("vars.vip and 1", "'and' needs bool operands, not a number"),
        ("1 in caller", "only a string can be in a string, not a number"),
        ("1 in ['a']", "a number is never in a list of string"),
        ("'a' in 5", "'in' needs a list or a string on its right, not a number"),
        ("[1, 'a']", "a list cannot mix number and string"),
        ("len(5)", "len() argument 1 must be a string or a list of any, not a number"),
        ("len()", "len() takes 1 argument (0 given)"),
        ("substr('a')", "substr() takes 2 to 3 arguments (1 given)"),
        ("startswith(caller)", "startswith() takes 2 arguments (1 given)"),
        ("evil(1)", "unknown function evil()"),
        ("lenn(caller)", "unknown function lenn() (did you mean len?)"),
        ("vars.balanse", "unknown variable vars.balanse (did you mean vars.balance?)"),
        ("vars", "'vars' needs a field, e.g. vars.balance"),
        ("password", "unknown variable password"),
    ],
)
def test_type_errors(source: str, message: str) -> None:
    _, issues = type_of(source)
    assert issues == [message]


def test_one_mistake_is_reported_once() -> None:
    _, issues = type_of("(vars.zzzzzz + 1) * 2 > 3 and (vars.zzzzzz + 1) > 0")
    assert issues == ["unknown variable vars.zzzzzz", "unknown variable vars.zzzzzz"]


def test_expected_types() -> None:
    checker = TypeChecker(TYPES)
    checker.check(parse_expr("now.hour"), BOOL)
    assert [i.message for i in checker.issues] == ["expected a bool here, but this is a number"]
    assert TypeChecker(TYPES).check(parse_expr("[caller]"), ANY) == list_of(STRING)


# -- evaluation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("1 + 2 * 3", Decimal(7)),
        ("(1 + 2) * 3", Decimal(9)),
        ("0.1 + 0.2 == 0.3", True),
        ("10 / 4", Decimal("2.5")),
        ("7 % 3", Decimal(1)),
        ("-vars.balance", Decimal("-1234.50")),
        ("vars.balance > 1000 and vars.vip", True),
        ("caller + '!'", "13912345678!"),
        ("startswith(caller, '139')", True),
        ("endswith(caller, '78')", True),
        ("contains(caller, '2345')", True),
        ("'2345' in caller", True),
        ("digits in ['41', '42']", True),
        ("digits not in ['41', '42']", False),
        ("upper('abc') + lower('DEF') + trim('  x ')", "ABCdefx"),
        ("substr(caller, 3, 4)", "1234"),
        ("substr(caller, 9)", "78"),
        ("len(caller)", Decimal(11)),
        ("len([1, 2, 3])", Decimal(3)),
        ("number('12.5') + 1", Decimal("13.5")),
        ("number('abc')", None),
        ("number('1e999')", None),
        ("string(vars.balance)", "1234.5"),
        ("string(true)", "true"),
        ("round(2.345, 2)", Decimal("2.35")),
        ("round(2.5)", Decimal(3)),
        ("abs(-2)", Decimal(2)),
        ("min(3, 1, 2) + max(3, 1, 2)", Decimal(4)),
        ("coalesce(vars.nothing, vars.name)", "Li"),
        ("vars.nothing == null", True),
        ("1 == '1'", False),
        ("true == 1", False),
        ("'b' > 'a'", True),
        ("now.hour >= 9 and now.hour < 18", True),
        ("not vars.nothing", True),
        ("vars.nothing or true", True),
        ("false and vars.missing", False),  # short-circuit: the missing variable is not read
    ],
)
def test_evaluation(source: str, value: Value) -> None:
    assert ev(source) == value


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("1 / 0", "'/' failed: DivisionByZero"),
        ("5 % 0", "'%' failed"),
        ("vars.nothing + 1", "'+' needs numbers, not a null"),
        ("vars.nothing > 1", "cannot order a null and a number"),
        ("len(vars.nothing)", "len() needs text or a list"),
        ("upper(vars.nothing)", "upper() needs text, got null"),
        ("round(1, 9)", "round() keeps 0 to 6 places, not 9"),
        ("substr(caller, 1.5)", "substr() needs a whole number, got 1.5"),
        ("99999999999999 * 99999999999999", "number too large"),
        ("vars.name and true", "a condition must be true or false, not a string"),
        ("vars.missing", "unknown vars.missing"),
        ("'x' in 3", "'in' needs a list or text on its right, not a number"),
    ],
)
def test_runtime_errors_are_eval_errors(source: str, message: str) -> None:
    with pytest.raises(EvalError, match=re.escape(message)):
        ev(source)


def test_text_cannot_grow_without_bound() -> None:
    # One expression is short, but a loop of `set` steps could double a text each time.
    assert ev("len(vars.big + vars.big)") == Decimal(8000)
    with pytest.raises(EvalError, match="text longer than 10000 characters"):
        ev("vars.big + vars.big + vars.big")


def test_to_text() -> None:
    assert [
        to_text(v) for v in (None, True, Decimal("1.50"), Decimal("1E+3"), ("a", Decimal(2)))
    ] == [
        "",
        "true",
        "1.5",
        "1000",
        "a, 2",
    ]


# -- templates ---------------------------------------------------------------------------


def test_templates_keep_offsets() -> None:
    template = parse_template("Hello {vars.name}, {{literal}} {len(caller)}")
    assert [type(p).__name__ for p in template.parts] == ["str", "Hole", "str", "Hole"]
    assert template.parts[2] == ", {literal} "
    assert [hole.offset for hole in template.holes] == [7, 32]
    assert template.literal_prefix == "Hello "


@pytest.mark.parametrize(
    ("text", "offset", "message"),
    [
        ("a {b", 2, "'{' is not closed (write '{{' for a brace)"),
        ("a } b", 2, "'}' without '{' (write '}}' for a brace)"),
        ("x {1 +}", 6, "unexpected end of expression"),
        ("x {}", 3, "empty expression"),
    ],
)
def test_template_errors(text: str, offset: int, message: str) -> None:
    with pytest.raises(ExprSyntaxError) as caught:
        parse_template(text)
    assert (caught.value.offset, caught.value.message) == (offset, message)
