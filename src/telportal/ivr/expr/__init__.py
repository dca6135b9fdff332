"""The flow expression language: tokenizer, Pratt parser, type checker and evaluator.

No Python eval, compile or ast is used anywhere: expressions can only read the call's
variables and call the functions listed in `functions`.
"""

from telportal.ivr.expr.evaluate import evaluate, truth
from telportal.ivr.expr.lexer import ExprSyntaxError
from telportal.ivr.expr.nodes import Binary, Call, Expr, ListExpr, Literal, Unary, Variable
from telportal.ivr.expr.parser import parse_expr
from telportal.ivr.expr.templates import Hole, Template, parse_template
from telportal.ivr.expr.typecheck import TypeChecker, TypeIssue
from telportal.ivr.expr.types import ANY, BOOL, NULL, NUMBER, STRING, Type, list_of
from telportal.ivr.expr.values import EvalError, Value, to_text

__all__ = [
    "ANY",
    "BOOL",
    "NULL",
    "NUMBER",
    "STRING",
    "Binary",
    "Call",
    "EvalError",
    "Expr",
    "ExprSyntaxError",
    "Hole",
    "ListExpr",
    "Literal",
    "Template",
    "Type",
    "TypeChecker",
    "TypeIssue",
    "Unary",
    "Value",
    "Variable",
    "evaluate",
    "list_of",
    "parse_expr",
    "parse_template",
    "to_text",
    "truth",
]
