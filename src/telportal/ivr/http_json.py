"""Turning an enterprise system's JSON answer into flow variables, or refusing it.

An answer is used only if every declared field is there with its declared type; the
interpreter then sets all the variables at once, or none (the call goes to on_error).
Numbers are read as Decimal, never float, and within the expression limits. Bodies are
capped in size, and JSON nested too deeply for the parser is refused rather than raised.
"""

import json
from collections.abc import Mapping
from decimal import Decimal

from telportal.ivr.expr import Value
from telportal.ivr.expr.values import MAX_MAGNITUDE, MAX_TEXT_CHARS
from telportal.ivr.spec import HttpField

MAX_HTTP_BODY = 64 * 1024
_MISSING = object()


class BadResponse(ValueError):
    """`kind` goes into `http.error`: too_large, bad_json, missing_field or bad_field."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def response_fields(fields: Mapping[str, HttpField], body: bytes) -> dict[str, Value]:
    """The declared fields of a JSON body, by variable name; raises BadResponse."""
    if len(body) > MAX_HTTP_BODY:
        raise BadResponse("too_large", f"more than {MAX_HTTP_BODY} bytes")
    try:
        document = json.loads(
            body.decode("utf-8"),
            parse_float=Decimal,
            parse_int=Decimal,
            parse_constant=_reject_constant,
        )
    except (ValueError, RecursionError) as exc:
        raise BadResponse("bad_json", type(exc).__name__) from None
    values: dict[str, Value] = {}
    for var, spec in fields.items():
        path = spec.from_ or var
        raw = _dig(document, path.split("."))
        if raw is _MISSING or raw is None:
            if spec.required:
                raise BadResponse("missing_field", path)
            values[var] = None
            continue
        values[var] = _converted(raw, spec.type, path)
    return values


def json_value(value: Value) -> object:
    """An expression value as JSON data for a request body."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, tuple):
        return [json_value(item) for item in value]
    return value


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _dig(document: object, keys: list[str]) -> object:
    node = document
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return _MISSING
        node = node[key]
    return node


def _converted(raw: object, kind: str, path: str) -> Value:
    if kind == "number" and isinstance(raw, Decimal):
        if raw.is_finite() and abs(raw) < MAX_MAGNITUDE:
            return raw
    elif kind == "string" and isinstance(raw, str):
        if len(raw) <= MAX_TEXT_CHARS:
            return raw
    elif kind == "bool" and isinstance(raw, bool):
        return raw
    raise BadResponse("bad_field", f"{path} is not a {kind}")
