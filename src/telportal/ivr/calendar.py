"""Business-hours calendars: weekly hours, holidays and exceptions, in a time zone.

A calendar answers one question for an instant: is the tenant open, closed, or closed
for a holiday? The rules, first match wins, on the local date in the calendar's zone:

    1. an exception for that date: its hours (or `closed`) decide open or closed;
    2. a holiday covering that date: holiday;
    3. the weekly hours of that weekday: open inside one of its intervals, else closed.

So a make-up working day inside a holiday week is an exception with hours, and a day the
office closes for a reason other than a holiday is an exception with `closed`.

Hours are written `09:00-12:00, 13:00-18:00` (or a list of such), `closed`, or `24h`.
Intervals include their start and exclude their end; `24:00` may end the last interval.
Weekly keys are days (`mon` ... `sun`), ranges (`mon-fri`) or lists (`sat, sun`).
"""

import itertools
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

CalendarStatus = Literal["open", "closed", "holiday"]
Interval = tuple[int, int]  # minutes after local midnight: [start, end)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_HOLIDAY_SPAN_DAYS = 366
_TIME = re.compile(r"^([01][0-9]|2[0-4]):([0-5][0-9])$")
_HOURS_PATTERN = r"^(closed|24h|[0-9:, -]+)$"


def _minutes(text: str) -> int:
    match = _TIME.match(text.strip())
    if match is None:
        raise ValueError(f"bad time {text.strip()!r}: write HH:MM, e.g. 09:00")
    minutes = int(match[1]) * 60 + int(match[2])
    if minutes > 24 * 60:
        raise ValueError(f"bad time {text.strip()!r}: the day ends at 24:00")
    return minutes


def parse_hours(value: Any) -> tuple[Interval, ...]:
    """`"09:00-12:00, 13:00-18:00"`, a list of such, `closed` or `24h` to intervals."""
    if isinstance(value, tuple) and all(isinstance(i, tuple) for i in value):
        return value
    if value == "closed" or value is False:
        return ()
    if value == "24h":
        return ((0, 24 * 60),)
    if isinstance(value, str):
        pieces = [piece for piece in value.split(",") if piece.strip()]
    elif isinstance(value, list) and all(isinstance(piece, str) for piece in value):
        pieces = value
    else:
        raise ValueError("hours must look like '09:00-18:00', 'closed' or '24h'")
    if not pieces:
        raise ValueError("no hours given: write 'closed' for a closed day")
    intervals: list[Interval] = []
    for piece in pieces:
        start_text, dash, end_text = piece.partition("-")
        if not dash:
            raise ValueError(f"bad hours {piece.strip()!r}: write START-END, e.g. 09:00-18:00")
        start, end = _minutes(start_text), _minutes(end_text)
        if end <= start:
            raise ValueError(
                f"bad hours {piece.strip()!r}: the end must be after the start"
                " (split hours past midnight over two days)"
            )
        intervals.append((start, end))
    intervals.sort()
    for (_, end), (start, _) in itertools.pairwise(intervals):
        if start < end:
            raise ValueError(f"hours overlap: {value!r}")
    return tuple(intervals)


def _iso_date(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"bad date {value!r}: write YYYY-MM-DD, e.g. 2026-01-01") from None
    return value


def _day_keys(key: str) -> list[int]:
    days: list[int] = []
    for part in key.split(","):
        first, dash, last = part.strip().lower().partition("-")
        if first not in DAYS or (dash and last not in DAYS):
            raise ValueError(f"bad day {part.strip()!r}: use mon, tue, wed, thu, fri, sat, sun")
        start = DAYS.index(first)
        end = DAYS.index(last) if dash else start
        if end < start:
            raise ValueError(f"bad day range {part.strip()!r}: write it from mon towards sun")
        days.extend(range(start, end + 1))
    return days


Hours = Annotated[
    tuple[tuple[int, int], ...],
    BeforeValidator(parse_hours),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": _HOURS_PATTERN},
                {"type": "array", "items": {"type": "string"}, "minItems": 1},
            ]
        }
    ),
]


def _day_key(key: str) -> str:
    _day_keys(key)
    return key


DayKey = Annotated[str, AfterValidator(_day_key)]
IsoDate = Annotated[
    date, BeforeValidator(_iso_date), WithJsonSchema({"type": "string", "format": "date"})
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class HolidaySpec(_Strict):
    """One day (`date`) or a range of days (`from` ... `to`, both included)."""

    date_: IsoDate | None = Field(None, alias="date")
    from_: IsoDate | None = Field(None, alias="from")
    to: IsoDate | None = None
    name: str = ""

    @model_validator(mode="before")
    @classmethod
    def _plain_date(cls, value: Any) -> Any:
        return {"date": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_form(self) -> "HolidaySpec":
        if (self.date_ is None) == (self.from_ is None and self.to is None):
            raise ValueError("a holiday needs either 'date' or both 'from' and 'to'")
        if self.date_ is None:
            if self.from_ is None or self.to is None:
                raise ValueError("a holiday range needs both 'from' and 'to'")
            if self.to < self.from_:
                raise ValueError("a holiday range must end on or after its start")
            if (self.to - self.from_).days >= MAX_HOLIDAY_SPAN_DAYS:
                raise ValueError(
                    f"a holiday range cannot span {MAX_HOLIDAY_SPAN_DAYS} days or more"
                )
        return self

    def days(self) -> list[date]:
        if self.date_ is not None:
            return [self.date_]
        first, last = self.from_ or date.min, self.to or date.min  # validated: both are set
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]


class ExceptionSpec(_Strict):
    """A date with its own hours (`closed` to close it), overriding holidays and weeks."""

    date_: IsoDate = Field(alias="date")
    hours: Hours
    name: str = ""


def time_zone_name(name: str) -> str:
    zone(name)
    return name


class CalendarSpec(_Strict):
    timezone: Annotated[str, AfterValidator(time_zone_name)] | None = Field(
        None, description="IANA zone; default: the flow's timezone"
    )
    weekly: dict[DayKey, Hours] = Field(default_factory=dict)
    holidays: list[HolidaySpec] = Field(default_factory=list)
    exceptions: list[ExceptionSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> "CalendarSpec":
        seen: dict[int, str] = {}
        for key in self.weekly:
            for day in _day_keys(key):
                if day in seen:
                    raise ValueError(f"{DAYS[day]} is in both '{seen[day]}' and '{key}' of weekly")
                seen[day] = key
        dates = [e.date_ for e in self.exceptions]
        twice = sorted({d for d in dates if dates.count(d) > 1})
        if twice:
            raise ValueError(f"more than one exception for {twice[0].isoformat()}")
        return self


def zone(name: str) -> ZoneInfo:
    """The time zone called `name`; ValueError if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as Asia/Shanghai"
        ) from None


@dataclass(frozen=True, slots=True)
class Verdict:
    status: CalendarStatus
    reason: str  # "weekly hours", a holiday's or exception's name


@dataclass(frozen=True, slots=True)
class Calendar:
    name: str
    timezone: ZoneInfo
    weekly: tuple[tuple[Interval, ...], ...]  # index 0 is Monday
    holidays: dict[date, str]
    exceptions: dict[date, tuple[tuple[Interval, ...], str]]

    @classmethod
    def build(cls, name: str, spec: CalendarSpec, default_timezone: str = "UTC") -> "Calendar":
        weekly: list[tuple[Interval, ...]] = [() for _ in DAYS]
        for key, hours in spec.weekly.items():
            for weekday in _day_keys(key):
                weekly[weekday] = hours
        holidays: dict[date, str] = {}
        for holiday in spec.holidays:
            for day in holiday.days():
                holidays.setdefault(day, holiday.name or "holiday")
        exceptions = {e.date_: (e.hours, e.name or "exception") for e in spec.exceptions}
        tz = zone(spec.timezone or default_timezone)
        return cls(name, tz, tuple(weekly), holidays, exceptions)

    def verdict(self, at: datetime) -> Verdict:
        """Open, closed or holiday at the instant `at` (timezone-aware)."""
        if at.tzinfo is None:
            raise ValueError("calendar times must be timezone-aware")
        local = at.astimezone(self.timezone)
        minute = local.hour * 60 + local.minute
        today = local.date()
        if today in self.exceptions:
            hours, name = self.exceptions[today]
            return Verdict("open" if _inside(hours, minute) else "closed", name)
        if today in self.holidays:
            return Verdict("holiday", self.holidays[today])
        status: CalendarStatus = (
            "open" if _inside(self.weekly[today.weekday()], minute) else "closed"
        )
        return Verdict(status, "weekly hours")

    def status(self, at: datetime) -> CalendarStatus:
        return self.verdict(at).status


def _inside(hours: tuple[Interval, ...], minute: int) -> bool:
    return any(start <= minute < end for start, end in hours)
