"""How a row's values become a statement's parameters, without IO (`store/sqlite_rows`
runs the statements).

Every call record passes here once per write, its datetimes and JSON columns through
their conversions, so the module is compiled with mypyc (decision 0022): interpreted,
this was about two fifths of what writing a call record cost in Python
(bench/call_records.py).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, Final

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class Statement:
    """An INSERT or UPDATE: its SQL and how a row's values become its parameters."""

    sql: str
    keys: tuple[str, ...]  # the columns bound, in the statement's order
    processors: tuple[Processor, ...]
    defaults: tuple[tuple[str, Callable[[], Any]], ...] = ()  # INSERT: filled when not given
    # The row's values in `keys` order (one C call), and which of them to convert.
    _values: Callable[[Mapping[str, Any]], Any] = field(init=False, repr=False, compare=False)
    _converted: tuple[tuple[int, Callable[[Any], Any]], ...] = field(
        init=False, repr=False, compare=False
    )

    # Written out, not generated: see decision 0021.
    def __init__(
        self,
        sql: str,
        keys: tuple[str, ...],
        processors: tuple[Processor, ...],
        defaults: tuple[tuple[str, Callable[[], Any]], ...] = (),
    ) -> None:
        object.__setattr__(self, "sql", sql)
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "processors", processors)
        object.__setattr__(self, "defaults", defaults)
        get = itemgetter(*keys)
        values: Callable[[Mapping[str, Any]], Any] = (
            get if len(keys) > 1 else (lambda row: (get(row),))
        )
        converted: list[tuple[int, Callable[[Any], Any]]] = []
        for i, proc in enumerate(processors):
            if proc is not None:
                converted.append((i, proc))
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_converted", tuple(converted))

    def params(self, row: Mapping[str, Any]) -> Sequence[Any]:
        if self.defaults:
            row = dict(row)
            for key, default in self.defaults:
                if key not in row:
                    row[key] = default()
        values = self._values(row)
        if not self._converted:
            return tuple(values)
        converted = list(values)
        for i, proc in self._converted:
            converted[i] = proc(converted[i])
        return converted


def empty_json(proc: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`proc`, with empty lists and objects as the text `proc` gave for them once."""
    return _EmptyJson(proc)


class _EmptyJson:
    def __init__(self, proc: Callable[[Any], Any]) -> None:
        self.proc = proc
        self.empty_list = proc([])
        self.empty_object = proc({})

    def __call__(self, value: Any) -> Any:
        # The class first: SQLAlchemy's JSON.NULL and null() refuse to be tested for truth.
        kind = type(value)
        if kind is list:
            if not value:
                return self.empty_list
        elif kind is dict and not value:
            return self.empty_object
        return self.proc(value)


class _LastSecond:
    """The texts of the second converted last, with its fields: the datetimes of one
    write are mostly of the same second. One tuple, replaced whole, so that a reader
    never pairs one second's fields with another's texts."""

    def __init__(self) -> None:
        self.texts: tuple[tuple[int, int, int, int, int, int], str, str] = (
            (0, 0, 0, 0, 0, 0),
            "",
            "",
        )

    def of(self, value: datetime) -> tuple[str, str]:
        """The UTC datetime's second as `isoformat(" ")` and `isoformat()` write it,
        without a fraction or a zone."""
        fields = (value.year, value.month, value.day, value.hour, value.minute, value.second)
        last_fields, spaced, iso = self.texts
        if fields != last_fields:
            spaced = value.replace(tzinfo=None, microsecond=0).isoformat(" ")
            iso = spaced[:10] + "T" + spaced[11:]
            self.texts = (fields, spaced, iso)
        return spaced, iso


# Final: compiled, its methods are called directly rather than looked up by name.
_LAST_SECOND: Final = _LastSecond()


def utc_text(value: datetime | None) -> str | None:
    """An aware datetime as SQLite stores a `UTCDateTime`: UTC, without the zone.

    `isoformat` and `replace` cost about a microsecond each on the 2-core machine, as
    does SQLAlchemy's seven-field format, and a call record has three or four
    datetimes: the text up to the second is made once a second instead."""
    if value is None:
        return None
    zone = value.tzinfo
    if zone is not UTC:
        if zone is None:
            raise ValueError("naive datetimes are not stored; use UTC")
        value = value.astimezone(UTC)
    return _LAST_SECOND.of(value)[0] + _fraction(value.microsecond)


def iso_text(value: datetime) -> str:
    """`value.isoformat()`, sooner for UTC: with a zone it costs about 15,000
    instructions (the offset is formatted through a timedelta), and each IVR step a
    call visits writes one in the call record."""
    if value.tzinfo is not UTC:
        return value.isoformat()
    second = _LAST_SECOND.of(value)[1]
    microsecond = value.microsecond
    if microsecond:
        return second + _fraction(microsecond) + "+00:00"
    return second + "+00:00"


def _fraction(microsecond: int) -> str:
    # ".%06d" without parsing a format: a seventh digit, dropped.
    return "." + str(1_000_000 + microsecond)[1:]
