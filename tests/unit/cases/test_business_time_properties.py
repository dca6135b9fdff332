"""Properties of business time on calendars with DST changes, holidays and odd hours.

- `between(s, add(s, d)) == d`: adding then measuring gives the duration back;
- `add(s, between(s, t))` is at or before `t`, with no open time left in between;
- adding is associative: `add(add(s, d1), d2) == add(s, d1 + d2)`;
- `is_open` agrees with the calendar's own `status` at every instant, DST gaps and
  repeated hours included (the calendar is the reference the segments must match).
"""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from telportal.cases import BusinessHours
from tests.unit.cases.support import T, calendar

CALENDARS = [
    BusinessHours(
        T,
        calendar(
            "Europe/Berlin",
            {
                "mon-fri": "08:00-12:00, 13:00-17:30",
                "sat": "09:00-11:00",
                # edges inside the skipped hour (spring) and the repeated hour (autumn)
                "sun": "01:30-02:30, 02:45-03:30",
            },
            holidays=["2026-12-24", {"from": "2026-12-25", "to": "2026-12-26"}],
            exceptions=[{"date": "2026-12-27", "hours": "10:00-14:00"}],
        ),
    ),
    BusinessHours(
        T,
        calendar(
            "America/New_York",
            {
                "mon-fri": "00:00-02:30, 09:00-17:00",
                "sat": "24h",
                "sun": "01:15-01:45, 02:15-02:40, 03:00-24:00",
            },
            holidays=["2026-07-03", "2026-11-26"],
        ),
    ),
    BusinessHours(
        T,
        calendar(
            "Asia/Shanghai",
            {"mon-fri": "09:00-12:00, 13:00-18:00"},
            holidays=[{"from": "2026-10-01", "to": "2026-10-07"}],
            exceptions=[{"date": "2026-10-10", "hours": "09:00-18:00"}],
        ),
    ),
]

instants = st.datetimes(
    min_value=datetime(2025, 12, 1),  # hypothesis wants naive bounds
    max_value=datetime(2027, 2, 1),
    timezones=st.just(UTC),
)
durations = st.integers(min_value=0, max_value=120 * 3600).map(lambda s: timedelta(seconds=s))
calendars = st.sampled_from(CALENDARS)
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True)


@SETTINGS
@given(calendars, instants, durations)
def test_between_undoes_add(bh: BusinessHours, start: datetime, duration: timedelta) -> None:
    due = bh.add(start, duration)
    assert due >= start
    assert bh.between(start, due) == duration


@SETTINGS
@given(calendars, instants, instants)
def test_add_of_between_reaches_the_last_open_instant(
    bh: BusinessHours, a: datetime, b: datetime
) -> None:
    start, end = min(a, b), max(a, b)
    used = bh.between(start, end)
    assert used >= timedelta(0)
    assert bh.between(end, start) == -used
    reached = bh.add(start, used)
    assert reached <= end
    assert bh.between(reached, end) == timedelta(0)


@SETTINGS
@given(calendars, instants, durations, durations)
def test_add_is_associative(
    bh: BusinessHours, start: datetime, first: timedelta, second: timedelta
) -> None:
    assert bh.add(bh.add(start, first), second) == bh.add(start, first + second)


@SETTINGS
@given(calendars, instants)
def test_is_open_agrees_with_the_calendar(bh: BusinessHours, instant: datetime) -> None:
    assert bh.is_open(instant) == (bh.calendar.status(instant) == "open")


# The days where calendars are hardest: each zone's DST changes, holidays, exceptions.
HARD_DAYS = {
    0: ["2026-03-29", "2026-10-25", "2026-12-24", "2026-12-27"],
    1: ["2026-03-08", "2026-11-01", "2026-07-03"],
    2: ["2026-09-30", "2026-10-10"],
}


def test_is_open_on_every_five_minutes_of_the_hard_days() -> None:
    # Instants on (and a microsecond before) five-minute marks hit interval edges and
    # the instants of DST changes, which random instants rarely do.
    step, checked = timedelta(minutes=5), 0
    for index, days in HARD_DAYS.items():
        bh = CALENDARS[index]
        for day in days:
            instant = datetime.fromisoformat(day).replace(tzinfo=UTC) - timedelta(days=1)
            end = instant + timedelta(days=3)
            while instant < end:
                for probe in (instant, instant - timedelta(microseconds=1)):
                    assert bh.is_open(probe) == (bh.calendar.status(probe) == "open"), probe
                    checked += 1
                instant += step
    assert checked == 2 * 9 * 3 * 24 * 12
