"""The static type checker for flow expressions.

    and, or, not            operands bool; result bool
    == !=                   same types, or either side null or any
    < <= > >=               numbers with numbers or strings with strings
    + - * / %               numbers; + also joins two strings
    - (prefix)              number
    x in y, x not in y      y a list of x's type, or both strings (substring)
    f(...)                  the signatures in `telportal.ivr.expr.functions`
    vars.x, now.hour, ...   the types the flow declares (see `telportal.ivr.variables`)

Problems are collected rather than raised, each with the offset of the node at fault.
"""

import difflib
from collections.abc import Mapping
from dataclasses import dataclass

from telportal.ivr.expr.functions import FUNCTIONS
from telportal.ivr.expr.nodes import Binary, Call, Expr, ListExpr, Literal, Unary, Variable
from telportal.ivr.expr.types import ANY, BOOL, NULL, NUMBER, STRING, Type, fits, list_of, unify


@dataclass(frozen=True, slots=True)
class TypeIssue:
    message: str
    offset: int


class TypeChecker:
    """Types expressions against the variables of one flow, collecting issues."""

    def __init__(self, variables: Mapping[str, Type]) -> None:
        self.variables = variables
        self.issues: list[TypeIssue] = []

    def check(self, expr: Expr, expected: Type | None = None) -> Type:
        found = self._type(expr)
        if expected is not None and not fits(found, expected):
            self._issue(f"expected a {expected} here, but this is a {found}", expr)
        return found

    def _issue(self, message: str, node: Expr) -> Type:
        self.issues.append(TypeIssue(message, node.offset))
        return ANY

    def _type(self, expr: Expr) -> Type:
        if isinstance(expr, Literal):
            return _literal_type(expr)
        if isinstance(expr, Variable):
            return self._variable(expr)
        if isinstance(expr, ListExpr):
            return self._list(expr)
        if isinstance(expr, Unary):
            return self._unary(expr)
        if isinstance(expr, Binary):
            return self._binary(expr)
        return self._call(expr)

    def _variable(self, expr: Variable) -> Type:
        found = self.variables.get(expr.name)
        if found is not None:
            return found
        prefix = expr.path[0] + "."
        fields = sorted(name for name in self.variables if name.startswith(prefix))
        if len(expr.path) == 1 and fields:
            return self._issue(f"'{expr.name}' needs a field, e.g. {fields[0]}", expr)
        close = difflib.get_close_matches(expr.name, list(self.variables), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return self._issue(f"unknown variable {expr.name}{hint}", expr)

    def _list(self, expr: ListExpr) -> Type:
        item: Type = NULL
        for element in expr.items:
            found = self._type(element)
            joined = unify(item, found)
            if joined is None:
                self._issue(f"a list cannot mix {item} and {found}", element)
                joined = ANY
            item = joined
        return list_of(ANY if item == NULL else item)

    def _unary(self, expr: Unary) -> Type:
        found = self._type(expr.operand)
        if expr.op == "not":
            if not fits(found, BOOL):
                self._issue(f"'not' needs a bool, not a {found}", expr.operand)
            return BOOL
        if not fits(found, NUMBER):
            self._issue(f"'-' needs a number, not a {found}", expr.operand)
        return NUMBER

    def _binary(self, expr: Binary) -> Type:
        left = self._type(expr.left)
        right = self._type(expr.right)
        op = expr.op
        if op in ("and", "or"):
            for side, found in ((expr.left, left), (expr.right, right)):
                if not fits(found, BOOL):
                    self._issue(f"'{op}' needs bool operands, not a {found}", side)
            return BOOL
        if op in ("==", "!="):
            if unify(left, right) is None:
                self._issue(f"cannot compare a {left} with a {right}", expr)
            return BOOL
        if op in ("<", "<=", ">", ">="):
            if not any(fits(left, t) and fits(right, t) for t in (NUMBER, STRING)):
                self._issue(f"cannot order a {left} and a {right} with '{op}'", expr)
            return BOOL
        if op in ("in", "not in"):
            return self._membership(expr, left, right)
        return self._arithmetic(expr, left, right)

    def _arithmetic(self, expr: Binary, left: Type, right: Type) -> Type:
        numbers = fits(left, NUMBER) and fits(right, NUMBER)
        strings = expr.op == "+" and fits(left, STRING) and fits(right, STRING)
        if numbers and strings:
            return ANY  # both sides are any or null: only run time knows
        if strings:
            return STRING
        if numbers:
            return NUMBER
        can = "join two strings or add two numbers" if expr.op == "+" else "only work on numbers"
        return self._issue(f"'{expr.op}' cannot take a {left} and a {right}: it can {can}", expr)

    def _membership(self, expr: Binary, left: Type, right: Type) -> Type:
        if right.item is not None:
            if unify(left, right.item) is None:
                self._issue(f"a {left} is never in a {right}", expr)
        elif right.name == "string":
            if not fits(left, STRING):
                self._issue(f"only a string can be in a string, not a {left}", expr)
        elif right.name != "any":
            self._issue(f"'{expr.op}' needs a list or a string on its right, not a {right}", expr)
        return BOOL

    def _call(self, expr: Call) -> Type:
        args = [self._type(arg) for arg in expr.args]
        function = FUNCTIONS.get(expr.function)
        if function is None:
            close = difflib.get_close_matches(expr.function, list(FUNCTIONS), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            return self._issue(f"unknown function {expr.function}(){hint}", expr)
        problem = function.check_args(args)
        if problem is not None:
            return self._issue(problem, expr)
        return function.result_type(args)


def _literal_type(expr: Literal) -> Type:
    value = expr.value
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, str):
        return STRING
    return NUMBER
