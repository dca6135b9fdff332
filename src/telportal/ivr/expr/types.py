"""Static types of flow expressions: number, string, bool, null, any and list of T.

`null` is the type of the literal `null` and joins any other type (a variable that was
never set is null at run time). `any` is for values whose type is only known at run time
and fits everywhere; the checker uses it after a mistake so that one mistake is reported
once.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Type:
    name: str  # number, string, bool, null, any, list
    item: "Type | None" = None

    def __str__(self) -> str:
        return f"list of {self.item}" if self.item is not None else self.name


NUMBER = Type("number")
STRING = Type("string")
BOOL = Type("bool")
NULL = Type("null")
ANY = Type("any")


def list_of(item: Type) -> Type:
    return Type("list", item)


def type_from_name(name: str) -> Type:
    return {"number": NUMBER, "string": STRING, "bool": BOOL, "any": ANY}[name]


def unify(a: Type, b: Type) -> Type | None:
    """The type both fit in (null joins anything), or None if they do not mix."""
    if a == b:
        return a
    if "any" in (a.name, b.name):
        return ANY
    if a.name == "null":
        return b
    if b.name == "null":
        return a
    if a.item is not None and b.item is not None:
        item = unify(a.item, b.item)
        return list_of(item) if item is not None else None
    return None


def fits(actual: Type, expected: Type) -> bool:
    return (
        actual.name in ("any", "null")
        or expected.name == "any"
        or unify(actual, expected) == expected
    )
