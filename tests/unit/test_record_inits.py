"""Dataclasses whose `__init__` is written out (decision 0021) take the parameters the
generated one would: the same names in the same order, keyword-only where the fields
are, and the same defaults. Read from the source, so that it holds compiled too (a
compiled function's signature carries no defaults) and covers every such class,
present and future."""

import ast
from pathlib import Path

import pytest

import telportal

SOURCES = Path(telportal.__file__).resolve().parent


def _is_dataclass(node: ast.ClassDef) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Name) and target.id == "dataclass":
            return True
    return False


def _kw_only(node: ast.ClassDef) -> bool:
    return any(
        isinstance(d, ast.Call) and any(k.arg == "kw_only" for k in d.keywords)
        for d in node.decorator_list
    )


def _field_default(value: ast.expr | None) -> str | None:
    """The default an `__init__` parameter must have for a field declared with value:
    None for no default, "None" for a default factory (the parameter stands in)."""
    if value is None:
        return None
    if (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id == "field"
    ):
        keywords = {k.arg: k.value for k in value.keywords}
        if "default" in keywords:
            return ast.unparse(keywords["default"])
        if "default_factory" in keywords:
            return "None"
        return None
    return ast.unparse(value)


def _in_init(value: ast.expr | None) -> bool:
    if (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id == "field"
    ):
        for keyword in value.keywords:
            if keyword.arg == "init" and isinstance(keyword.value, ast.Constant):
                return bool(keyword.value.value)
    return True


def _written_out() -> list[tuple[str, ast.ClassDef, ast.FunctionDef]]:
    found = []
    for path in sorted(SOURCES.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef) or not _is_dataclass(node):
                continue
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    found.append((f"{path.relative_to(SOURCES)}:{node.name}", node, item))
    return found


WRITTEN_OUT = _written_out()


def test_the_hot_records_are_written_out() -> None:
    # The list this test checks is not empty: the records of every call are on it.
    names = {name.split(":")[1] for name, _, _ in WRITTEN_OUT}
    assert {"Request", "Response", "Params", "Via", "SessionDescription", "MediaStats"} <= names


@pytest.mark.parametrize(("name", "cls", "init"), WRITTEN_OUT, ids=[n for n, _, _ in WRITTEN_OUT])
def test_a_written_out_init_takes_the_fields(
    name: str, cls: ast.ClassDef, init: ast.FunctionDef
) -> None:
    fields = [
        (item.target.id, _field_default(item.value))
        for item in cls.body
        if isinstance(item, ast.AnnAssign)
        and isinstance(item.target, ast.Name)
        and "ClassVar" not in ast.unparse(item.annotation)
        and _in_init(item.value)
    ]
    args = init.args
    positional = [a.arg for a in args.args[1:]]
    keyword_only = [a.arg for a in args.kwonlyargs]
    if _kw_only(cls):
        assert positional == [], name
        assert keyword_only == [f for f, _ in fields], name
        defaults = [None if d is None else ast.unparse(d) for d in args.kw_defaults]
    else:
        assert keyword_only == [], name
        assert positional == [f for f, _ in fields], name
        missing = len(positional) - len(args.defaults)
        defaults = [None] * missing + [ast.unparse(d) for d in args.defaults]
    assert defaults == [d for _, d in fields], name
    # And every field is set, `init=False` ones too: a field the body forgot would
    # only fail when something read it.
    declared = [
        item.target.id
        for item in cls.body
        if isinstance(item, ast.AnnAssign)
        and isinstance(item.target, ast.Name)
        and "ClassVar" not in ast.unparse(item.annotation)
    ]
    assert sorted(declared) == sorted(_assigned(init)), name


def _assigned(init: ast.FunctionDef) -> set[str]:
    """The attributes `init` sets: `self.x = ...` or `object.__setattr__(self, "x", ...)`."""
    names: set[str] = set()
    for node in ast.walk(init):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Attribute) and ast.unparse(target.value) == "self":
                    names.add(target.attr)
        elif (
            isinstance(node, ast.Call)
            and ast.unparse(node.func) == "object.__setattr__"
            and isinstance(node.args[1], ast.Constant)
        ):
            names.add(str(node.args[1].value))
    return names
