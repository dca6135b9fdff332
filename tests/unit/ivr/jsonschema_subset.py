"""Just enough JSON Schema (draft 2020-12) to validate flows against the published schema.

No JSON Schema library is a dependency of the project, and the schema pydantic writes
uses a small set of keywords; this validator knows exactly those and fails loudly on any
other assertion keyword, so a schema change cannot silently go unchecked.
"""

import re
from collections.abc import Callable
from typing import Any

_ANNOTATIONS = {
    "$schema",
    "$id",
    "$defs",
    "title",
    "description",
    "default",
    "discriminator",
    "format",
    "examples",
}


def validate(instance: Any, schema: dict[str, Any]) -> list[str]:
    """Every place where `instance` breaks `schema`, as 'path: reason' strings."""
    return _Validator(schema).check(instance, schema, "$")


class _Validator:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root

    def resolve(self, ref: str) -> dict[str, Any]:
        assert ref.startswith("#/"), ref
        node: Any = self.root
        for part in ref[2:].split("/"):
            node = node[part]
        return dict(node)

    def check(self, value: Any, schema: dict[str, Any], path: str) -> list[str]:  # noqa: PLR0912
        errors: list[str] = []
        for key, rule in schema.items():
            if key in _ANNOTATIONS:
                continue
            if key == "$ref":
                errors += self.check(value, self.resolve(rule), path)
            elif key == "type":
                if not _is_type(value, rule):
                    errors.append(f"{path}: {value!r} is not {rule}")
            elif key == "const":
                if value != rule:
                    errors.append(f"{path}: {value!r} is not {rule!r}")
            elif key == "enum":
                if value not in rule:
                    errors.append(f"{path}: {value!r} not in {rule}")
            elif key in ("anyOf", "oneOf"):
                matches = [not self.check(value, option, path) for option in rule]
                count = sum(matches)
                if count == 0 or (key == "oneOf" and count > 1):
                    errors.append(f"{path}: {count} of the {key} choices match")
            elif key == "properties":
                if isinstance(value, dict):
                    for name, sub in rule.items():
                        if name in value:
                            errors += self.check(value[name], sub, f"{path}.{name}")
            elif key == "patternProperties":
                if isinstance(value, dict):
                    for pattern, sub in rule.items():
                        for name, item in value.items():
                            if re.search(pattern, name):
                                errors += self.check(item, sub, f"{path}.{name}")
            elif key == "additionalProperties":
                errors += self._additional(value, schema, rule, path)
            elif key == "required":
                if isinstance(value, dict):
                    errors += [f"{path}: missing {name}" for name in rule if name not in value]
            elif key == "items":
                if isinstance(value, list):
                    for i, item in enumerate(value):
                        errors += self.check(item, rule, f"{path}[{i}]")
            elif key in ("minItems", "minProperties", "minLength"):
                if isinstance(value, list | dict | str) and len(value) < rule:
                    errors.append(f"{path}: shorter than {rule}")
            elif key in ("maxItems", "maxLength"):
                if isinstance(value, list | str) and len(value) > rule:
                    errors.append(f"{path}: longer than {rule}")
            elif key == "pattern":
                if isinstance(value, str) and not re.search(rule, value):
                    errors.append(f"{path}: {value!r} does not match {rule}")
            elif key in ("minimum", "maximum"):
                if _is_number(value) and (value < rule if key == "minimum" else value > rule):
                    errors.append(f"{path}: {value} is out of range ({key} {rule})")
            else:
                raise AssertionError(f"the test validator does not know {key!r}")
        return errors

    def _additional(self, value: Any, schema: dict[str, Any], rule: Any, path: str) -> list[str]:
        if not isinstance(value, dict):
            return []
        known = set(schema.get("properties", {}))
        patterns = list(schema.get("patternProperties", {}))
        errors: list[str] = []
        for name, item in value.items():
            if name in known or any(re.search(p, name) for p in patterns):
                continue
            if rule is False:
                errors.append(f"{path}: unexpected {name}")
            elif isinstance(rule, dict):
                errors += self.check(item, rule, f"{path}.{name}")
        return errors


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_type(value: Any, kind: str | list[str]) -> bool:
    if isinstance(kind, list):
        return any(_is_type(value, k) for k in kind)
    checks: dict[str, Callable[[Any], bool]] = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": _is_number,
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
    }
    return bool(checks[kind](value))
