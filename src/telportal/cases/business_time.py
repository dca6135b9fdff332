"""Business time: durations counted only while a tenant's calendar is open.

A deadline such as "resolve within 8 business hours" is counted on the tenant's
business-hours calendar (`telportal.ivr.calendar`, the one IVR flows use, so the
hotline and the case desk agree on when the office is open). `BusinessHours` turns
that calendar into *open segments*: half-open ranges of instants `[start, end)` in UTC.
Everything else is arithmetic on segments:

- `add(start, d)`: the first instant at which `d` of open time has passed since
  `start`. A zero duration gives `start` itself. A deadline that is used up exactly at
  closing time is the closing time (18:00), not the next opening.
- `between(a, b)`: the open time inside `[a, b)`; negative when `b` is before `a`.

So `between(s, add(s, d)) == d` for every `d >= 0`, and `add(s, between(s, t))` is
`t`, or the end of the last open segment before `t` when `t` falls in closed time.

Why segments are computed from local dates, not by stepping a wall clock: opening
hours are wall-clock times ("09:00-18:00" in Asia/Shanghai or Europe/Berlin), while
durations are real elapsed time. For each local date we take that date's hours (the
calendar's rules: an exception, else a holiday closes it, else the weekday's hours)
and map each wall-clock interval to instants *one UTC-offset piece at a time*: within a
piece where the offset `o` is constant, wall time `w` is the instant `w - o`. So on a
spring-forward day an office open 01:00-03:00 is open one real hour; on a fall-back
day it is open three (the repeated hour is open twice), exactly the instants at which
`Calendar.status()` says "open". The tests check that the two agree.

Results are aware datetimes in UTC; inputs may be in any zone but must be aware.
"""

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

from telportal.ivr.calendar import Calendar, Interval

Segment = tuple[datetime, datetime]
"""Open from the first instant (included) to the second (excluded), both UTC."""

# UTC offsets lie between -12:00 and +14:00, so the instants of one local date lie in
# [midnight - 14h, next midnight + 12h]; an hour of margin on each side.
_BEFORE = timedelta(hours=15)
_AFTER = timedelta(hours=13)
# Offsets are sampled this often to find their changes. Two changes less than three
# hours apart (there and back) would be missed; time zones in use change twice a year.
_SAMPLE = timedelta(hours=3)
# A calendar with no open time at all would make `add` search forever.
SEARCH_LIMIT = timedelta(days=366)
_CACHE_DAYS = 8192
_INSTANT = timedelta(microseconds=1)
_ZERO = timedelta(0)


def _utc(at: datetime, name: str) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware: {at.isoformat()}")
    return at.astimezone(UTC)


class BusinessHours:
    """A tenant's calendar as open segments, with `add` and `between` on business time."""

    __slots__ = ("_days", "calendar", "tenant_id")

    def __init__(self, tenant_id: str, calendar: Calendar) -> None:
        self.tenant_id = tenant_id
        self.calendar = calendar
        # Local date -> its open segments. Dates repeat a lot (every deadline of every
        # case counts over the same weeks), and a calendar never changes: a new
        # calendar revision is a new BusinessHours.
        self._days: dict[date, tuple[Segment, ...]] = {}

    # ---- the public arithmetic -------------------------------------------------------

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant at which `duration` of open time has passed since `start`."""
        if duration < _ZERO:
            raise ValueError(f"a business duration cannot be negative: {duration}")
        start = _utc(start, "start")
        if duration == _ZERO:
            return start
        remaining = duration
        for begin, end in self.segments_from(start):
            span = end - begin
            if span >= remaining:
                return begin + remaining
            remaining -= span
        raise AssertionError("segments_from(start) never ends")  # pragma: no cover

    def between(self, a: datetime, b: datetime) -> timedelta:
        """Open time in `[a, b)`; `-between(b, a)` when `b` is before `a`."""
        a, b = _utc(a, "a"), _utc(b, "b")
        if b < a:
            return -self.between(b, a)
        return sum((end - begin for begin, end in self.segments_from(a, b)), _ZERO)

    def is_open(self, at: datetime) -> bool:
        """True when `at` lies in an open segment (the same answer as `Calendar.status`)."""
        at = _utc(at, "at")
        return any(True for _ in self.segments_from(at, at + _INSTANT))

    def next_open(self, at: datetime) -> datetime:
        """`at` when open, else the next opening."""
        begin, _ = next(self.segments_from(_utc(at, "at")))
        return begin

    def segments(self, start: datetime, end: datetime) -> list[Segment]:
        """The open segments inside `[start, end)`, clipped to it, touching ones merged."""
        merged: list[Segment] = []
        for begin, stop in self.segments_from(start, end):
            if merged and merged[-1][1] == begin:
                merged[-1] = (merged[-1][0], stop)
            else:
                merged.append((begin, stop))
        return merged

    def segments_from(self, start: datetime, end: datetime | None = None) -> Iterator[Segment]:
        """Open segments in `[start, end)` (no end: for ever), clipped to it, in order.

        Segments come one local date at a time, so a 24h week is seven segments (that
        touch). Without `end`, raises ValueError after `SEARCH_LIMIT` without open time.
        """
        start = _utc(start, "start")
        stop = None if end is None else _utc(end, "end")
        day = start.astimezone(self.calendar.timezone).date() - timedelta(days=1)
        buffered: list[Segment] = []
        last_open = start
        while stop is None or start < stop:
            buffered.extend(self._day(day))
            day += timedelta(days=1)
            # Every segment of the next date starts at or after its window's start, so
            # the buffered segments starting before it can go out, in order.
            horizon = _window_start(day)
            buffered.sort()
            ready = [s for s in buffered if s[0] < horizon]
            buffered = buffered[len(ready) :]
            for opening, closing in ready:
                begin = max(opening, start)
                finish = closing if stop is None else min(closing, stop)
                if begin < finish:
                    yield begin, finish
                    last_open = finish
            if stop is not None and horizon >= stop:
                return
            if stop is None and horizon - last_open > SEARCH_LIMIT:
                raise ValueError(
                    f"calendar {self.calendar.name!r} has no open time within"
                    f" {SEARCH_LIMIT.days} days after {last_open.isoformat()}"
                )

    # ---- one local date ----------------------------------------------------------------

    def _day(self, day: date) -> tuple[Segment, ...]:
        cached = self._days.get(day)
        if cached is None:
            if len(self._days) >= _CACHE_DAYS:
                self._days.clear()
            cached = self._days[day] = self._compute_day(day)
        return cached

    def _hours(self, day: date) -> tuple[Interval, ...]:
        # The calendar's own precedence (see telportal.ivr.calendar): exception, then
        # holiday, then the weekday.
        calendar = self.calendar
        if day in calendar.exceptions:
            return calendar.exceptions[day][0]
        if day in calendar.holidays:
            return ()
        return calendar.weekly[day.weekday()]

    def _compute_day(self, day: date) -> tuple[Segment, ...]:
        hours = self._hours(day)
        if not hours:
            return ()
        midnight = datetime.combine(day, time(0))  # naive local wall time
        pieces = _offset_pieces(self.calendar, _window_start(day), _window_end(day))
        out: list[Segment] = []
        for start_minute, end_minute in hours:
            wall_start = midnight + timedelta(minutes=start_minute)
            wall_end = midnight + timedelta(minutes=end_minute)
            for piece_start, piece_end, offset in pieces:
                begin = max((wall_start - offset).replace(tzinfo=UTC), piece_start)
                end = min((wall_end - offset).replace(tzinfo=UTC), piece_end)
                if begin < end:
                    out.append((begin, end))
        out.sort()
        merged: list[Segment] = []
        for begin, end in out:
            if merged and merged[-1][1] >= begin:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((begin, end))
        return tuple(merged)


def _window_start(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC) - _BEFORE


def _window_end(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC) + timedelta(days=1) + _AFTER


def _offset(calendar: Calendar, at: datetime) -> timedelta:
    offset = at.astimezone(calendar.timezone).utcoffset()
    return offset if offset is not None else _ZERO


def _offset_pieces(
    calendar: Calendar, start: datetime, end: datetime
) -> list[tuple[datetime, datetime, timedelta]]:
    """`[start, end)` cut where the zone's UTC offset changes: (from, to, offset)."""
    pieces: list[tuple[datetime, datetime, timedelta]] = []
    piece_start, offset = start, _offset(calendar, start)
    probe = start
    while probe < end:
        following = min(probe + _SAMPLE, end)
        next_offset = _offset(calendar, following)
        if next_offset != offset:
            change = _change_between(calendar, probe, following, offset)
            pieces.append((piece_start, change, offset))
            piece_start, offset = change, next_offset
        probe = following
    pieces.append((piece_start, end, offset))
    return pieces


def _change_between(
    calendar: Calendar, before: datetime, after: datetime, offset: timedelta
) -> datetime:
    """The first whole second in (before, after] whose offset is no longer `offset`."""
    low, high = int(before.timestamp()), int(after.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(calendar, datetime.fromtimestamp(middle, UTC)) == offset:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def add_business_time(hours: BusinessHours, start: datetime, duration: timedelta) -> datetime:
    """`hours.add(start, duration)`: the due instant of `duration` of business time."""
    return hours.add(start, duration)


def business_time_between(hours: BusinessHours, a: datetime, b: datetime) -> timedelta:
    """`hours.between(a, b)`: the business time in `[a, b)`, negative when b < a."""
    return hours.between(a, b)
