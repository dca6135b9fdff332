"""Text with expressions inside braces: `"Your account {vars.account} is open"`.

Used for speech texts, URLs, headers and transfer targets. `{{` and `}}` stand for
literal braces. Each expression keeps its offset in the whole text, so the checker can
point at the exact column of a mistake inside a template.
"""

from dataclasses import dataclass

from telportal.ivr.expr.lexer import ExprSyntaxError
from telportal.ivr.expr.nodes import Expr
from telportal.ivr.expr.parser import parse_expr


@dataclass(frozen=True, slots=True)
class Hole:
    expr: Expr
    offset: int  # where the expression text starts in the template


@dataclass(frozen=True, slots=True)
class Template:
    parts: tuple[str | Hole, ...]

    @property
    def holes(self) -> tuple[Hole, ...]:
        return tuple(part for part in self.parts if isinstance(part, Hole))

    @property
    def literal_prefix(self) -> str:
        """The text before the first expression (to check a URL's scheme statically)."""
        prefix: list[str] = []
        for part in self.parts:
            if isinstance(part, Hole):
                break
            prefix.append(part)
        return "".join(prefix)


def parse_template(text: str) -> Template:
    """Raises ExprSyntaxError with an offset into `text`."""
    parts: list[str | Hole] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if text.startswith("{{", i) or text.startswith("}}", i):
            literal.append(ch)
            i += 2
        elif ch == "}":
            raise ExprSyntaxError("'}' without '{' (write '}}' for a brace)", i)
        elif ch == "{":
            close = text.find("}", i + 1)
            if close < 0:
                raise ExprSyntaxError("'{' is not closed (write '{{' for a brace)", i)
            source = text[i + 1 : close]
            try:
                expr = parse_expr(source)
            except ExprSyntaxError as exc:
                raise ExprSyntaxError(exc.message, i + 1 + exc.offset) from None
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(Hole(expr, i + 1))
            i = close + 1
        else:
            literal.append(ch)
            i += 1
    if literal:
        parts.append("".join(literal))
    return Template(tuple(parts))
