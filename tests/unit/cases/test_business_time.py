"""Business time: nights, lunch, weekends, holidays, exception days and DST changes."""

from datetime import date, datetime, timedelta

import pytest

from telportal.cases import BusinessHours, add_business_time, business_time_between
from tests.unit.cases.support import (
    BERLIN,
    NEW_YORK,
    OFFICE,
    T,
    at,
    calendar,
    hours,
    minutes,
    office,
    sh,
    utc,
)


@pytest.mark.parametrize(
    ("start", "duration", "due"),
    [
        (sh("2026-03-02", "10:00"), hours(1), sh("2026-03-02", "11:00")),  # Monday morning
        (sh("2026-03-02", "11:30"), hours(1), sh("2026-03-02", "13:30")),  # over lunch
        (sh("2026-03-02", "10:00"), hours(7), sh("2026-03-02", "18:00")),  # used up at closing
        (sh("2026-03-02", "17:00"), hours(2), sh("2026-03-03", "10:00")),  # over the night
        (sh("2026-03-02", "07:00"), hours(1), sh("2026-03-02", "10:00")),  # before opening
        (sh("2026-03-13", "17:00"), hours(2), sh("2026-03-16", "10:00")),  # Friday to Monday
        (sh("2026-03-14", "10:00"), hours(1), sh("2026-03-16", "10:00")),  # from a Saturday
        (sh("2026-03-02", "10:00"), hours(40), sh("2026-03-09", "10:00")),  # a working week
        # Wednesday evening, Thursday 01-01 is a holiday: Friday.
        (sh("2025-12-31", "17:00"), hours(2), sh("2026-01-02", "10:00")),
        # Thursday 03-19 evening, Friday 03-20 is closed by an exception: Monday.
        (sh("2026-03-19", "17:30"), hours(1), sh("2026-03-23", "09:30")),
        # Friday 02-13, the make-up Saturday 02-14 (9 h), then the Spring Festival week.
        (sh("2026-02-13", "17:00"), hours(10), sh("2026-02-14", "18:00")),
        (sh("2026-02-13", "17:00"), hours(11), sh("2026-02-23", "10:00")),
    ],
)
def test_add_business_time_on_the_office_calendar(
    start: datetime, duration: timedelta, due: datetime
) -> None:
    bh = office()
    assert bh.add(start, duration) == due
    assert add_business_time(bh, start, duration) == due
    assert bh.between(start, due) == duration


def test_results_are_utc_and_inputs_may_be_in_any_zone() -> None:
    bh = office()
    due = bh.add(utc("2026-03-02", "02:00"), hours(1))  # 10:00 in Shanghai
    assert due == utc("2026-03-02", "03:00")
    assert due.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (sh("2026-03-02", "09:00"), sh("2026-03-02", "18:00"), hours(8)),  # lunch not counted
        (sh("2026-03-02", "12:10"), sh("2026-03-02", "12:50"), hours(0)),  # all lunch
        (sh("2026-03-13", "17:00"), sh("2026-03-16", "10:00"), hours(2)),  # over a weekend
        (sh("2026-03-14", "00:00"), sh("2026-03-15", "23:59"), hours(0)),  # the weekend
        (sh("2025-12-31", "00:00"), sh("2026-01-02", "00:00"), hours(8)),  # holiday not counted
        (sh("2026-02-16", "00:00"), sh("2026-02-23", "00:00"), hours(0)),  # the festival
        (sh("2026-02-14", "00:00"), sh("2026-02-15", "00:00"), hours(9)),  # make-up Saturday
        (sh("2026-03-02", "09:00"), sh("2026-03-09", "09:00"), hours(40)),
        (sh("2026-03-16", "09:00"), sh("2026-03-23", "09:00"), hours(32)),  # training Friday
    ],
)
def test_business_time_between(a: datetime, b: datetime, expected: timedelta) -> None:
    bh = office()
    assert bh.between(a, b) == expected
    assert business_time_between(bh, a, b) == expected
    assert bh.between(b, a) == -expected


def test_zero_duration_is_the_start_even_when_closed() -> None:
    saturday = sh("2026-03-14", "10:00")
    assert office().add(saturday, timedelta(0)) == saturday
    assert office().next_open(saturday) == sh("2026-03-16", "09:00")


def test_seconds_and_microseconds_are_kept() -> None:
    start = sh("2026-03-02", "11:59")
    assert office().add(start, timedelta(minutes=1, seconds=1, microseconds=5)) == sh(
        "2026-03-02", "13:00"
    ) + timedelta(seconds=1, microseconds=5)


def test_segments_are_clipped_and_in_order() -> None:
    segments = office().segments(sh("2026-03-13", "10:00"), sh("2026-03-16", "12:30"))
    assert segments == [
        (sh("2026-03-13", "10:00"), sh("2026-03-13", "12:00")),
        (sh("2026-03-13", "13:00"), sh("2026-03-13", "18:00")),
        (sh("2026-03-16", "09:00"), sh("2026-03-16", "12:00")),
    ]


def test_is_open_agrees_with_the_calendar() -> None:
    bh = office()
    for instant in [
        sh("2026-03-02", "08:59"),
        sh("2026-03-02", "09:00"),
        sh("2026-03-02", "12:00"),
        sh("2026-03-02", "17:59"),
        sh("2026-03-02", "18:00"),
        sh("2026-01-01", "10:00"),
        sh("2026-02-14", "10:00"),
        sh("2026-02-18", "10:00"),
        sh("2026-03-20", "10:00"),
    ]:
        assert bh.is_open(instant) == (OFFICE.status(instant) == "open"), instant


def test_bad_inputs_are_refused() -> None:
    bh = office()
    with pytest.raises(ValueError, match="negative"):
        bh.add(sh("2026-03-02", "10:00"), -hours(1))
    with pytest.raises(ValueError, match="timezone-aware"):
        bh.add(datetime(2026, 3, 2, 10), hours(1))
    with pytest.raises(ValueError, match="timezone-aware"):
        bh.between(sh("2026-03-02", "10:00"), datetime(2026, 3, 3))


def test_a_calendar_that_never_opens_is_an_error_not_a_hang() -> None:
    never = BusinessHours(T, calendar("Asia/Shanghai", {"mon-sun": "closed"}))
    with pytest.raises(ValueError, match="no open time within 366 days"):
        never.add(sh("2026-03-02", "10:00"), hours(1))
    # A sum over a given span has an answer, however long the span.
    assert never.between(sh("2026-03-02", "10:00"), sh("2028-04-02", "10:00")) == timedelta(0)


def test_a_long_holiday_is_crossed() -> None:
    # Closed for most of a year: the next opening is still found.
    closed = {"from": "2026-03-03", "to": "2027-01-31", "name": "renovation"}
    bh = BusinessHours(T, calendar("Asia/Shanghai", {"mon-fri": "09:00-18:00"}, holidays=[closed]))
    assert bh.add(sh("2026-03-02", "17:00"), hours(2)) == sh("2027-02-01", "10:00")


def test_24h_days_merge_into_one_segment() -> None:
    bh = BusinessHours(T, calendar("Asia/Shanghai", {"mon-sun": "24h"}))
    start = sh("2026-03-02", "10:00")
    assert bh.segments(start, start + timedelta(days=3)) == [(start, start + timedelta(days=3))]
    assert len(list(bh.segments_from(start, start + timedelta(days=3)))) == 4  # one per date
    assert bh.add(start, hours(100)) == start + hours(100)


# ---- daylight saving time ------------------------------------------------------------
# Berlin: 2026-03-29 02:00 CET -> 03:00 CEST (spring forward); 2026-10-25 03:00 CEST ->
# 02:00 CET (fall back). New York: 2026-03-08 02:00 EST -> 03:00 EDT.

BERLIN_OFFICE = calendar("Europe/Berlin", {"mon-fri": "09:00-17:00"})


def test_a_weekday_office_across_the_spring_change() -> None:
    bh = BusinessHours(T, BERLIN_OFFICE)
    friday = at(BERLIN, "2026-03-27", "16:00")  # 15:00 UTC
    monday = at(BERLIN, "2026-03-30", "10:00")  # 08:00 UTC, an hour less of offset
    assert bh.add(friday, hours(2)) == monday
    assert bh.add(friday, hours(2)) == utc("2026-03-30", "08:00")
    assert bh.between(friday, monday) == hours(2)


def test_a_weekday_office_across_the_autumn_change() -> None:
    bh = BusinessHours(T, BERLIN_OFFICE)
    friday = at(BERLIN, "2026-10-23", "16:00")
    assert bh.add(friday, hours(2)) == at(BERLIN, "2026-10-26", "10:00")
    assert bh.add(friday, hours(2)) == utc("2026-10-26", "09:00")


@pytest.mark.parametrize(
    ("sunday", "real_hours"),
    [("2026-03-29", 23), ("2026-04-05", 24), ("2026-10-25", 25)],
)
def test_a_24h_day_lasts_as_long_as_the_day_really_is(sunday: str, real_hours: int) -> None:
    bh = BusinessHours(T, calendar("Europe/Berlin", {"sun": "24h"}))
    start = at(BERLIN, sunday, "00:00")
    monday = (date.fromisoformat(sunday) + timedelta(days=1)).isoformat()
    assert bh.add(start, hours(real_hours)) == at(BERLIN, monday, "00:00")
    assert bh.between(start, start + timedelta(days=2)) == hours(real_hours)


def test_hours_inside_the_skipped_and_the_repeated_hour() -> None:
    # Open 01:00-04:00 on Sundays: on the spring change 02:00-03:00 does not exist (2 h
    # open); on the autumn change it happens twice (4 h open).
    bh = BusinessHours(T, calendar("Europe/Berlin", {"sun": "01:00-04:00"}))
    assert bh.between(at(BERLIN, "2026-03-29", "00:00"), at(BERLIN, "2026-03-30", "00:00")) == (
        hours(2)
    )
    assert bh.between(at(BERLIN, "2026-10-25", "00:00"), at(BERLIN, "2026-10-26", "00:00")) == (
        hours(4)
    )
    # The repeated 02:30 is open both times.
    assert bh.is_open(at(BERLIN, "2026-10-25", "02:30", fold=0))
    assert bh.is_open(at(BERLIN, "2026-10-25", "02:30", fold=1))
    assert bh.add(at(BERLIN, "2026-10-25", "01:00"), hours(3)) == utc("2026-10-25", "02:00")


def test_an_interval_ending_inside_the_gap_ends_at_the_change() -> None:
    # 01:30-02:30 on the spring change: 02:00-02:30 never happens, so 30 minutes.
    bh = BusinessHours(T, calendar("America/New_York", {"sun": "01:30-02:30"}))
    day = (at(NEW_YORK, "2026-03-08", "00:00"), at(NEW_YORK, "2026-03-09", "00:00"))
    assert bh.between(*day) == minutes(30)
    assert bh.segments(*day) == [(utc("2026-03-08", "06:30"), utc("2026-03-08", "07:00"))]


def test_new_york_office_over_its_spring_weekend() -> None:
    bh = BusinessHours(T, calendar("America/New_York", {"mon-fri": "09:00-17:00"}))
    friday = at(NEW_YORK, "2026-03-06", "16:00")  # 21:00 UTC
    assert bh.add(friday, hours(2)) == utc("2026-03-09", "14:00")  # Monday 10:00 EDT
    assert bh.between(friday, at(NEW_YORK, "2026-03-09", "10:00")) == hours(2)
