"""Business-hours calendars, durations and YAML positions."""

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from telportal.ivr.calendar import Calendar, CalendarSpec, parse_hours
from telportal.ivr.durations import format_duration, parse_duration
from telportal.ivr.yamlsource import Position, load_yaml

OFFICE = CalendarSpec.model_validate(
    {
        "timezone": "Asia/Shanghai",
        "weekly": {"mon-fri": "09:00-12:00, 13:00-18:00", "sat": ["10:00-14:00"], "sun": "closed"},
        "holidays": [
            "2026-01-01",
            {"from": "2026-02-16", "to": "2026-02-22", "name": "Spring Festival"},
        ],
        "exceptions": [
            {"date": "2026-02-21", "hours": "09:00-18:00", "name": "make-up day"},
            {"date": "2026-03-06", "hours": "closed", "name": "training"},
        ],
    }
)
CAL = Calendar.build("office", OFFICE)


def shanghai(day: str, hhmm: str) -> datetime:
    # Shanghai is UTC+8 all year.
    local = datetime.fromisoformat(f"{day}T{hhmm}:00+08:00")
    return local.astimezone(UTC)


@pytest.mark.parametrize(
    ("day", "time", "status", "reason"),
    [
        ("2026-03-02", "08:59", "closed", "weekly hours"),  # Monday, before opening
        ("2026-03-02", "09:00", "open", "weekly hours"),
        ("2026-03-02", "12:30", "closed", "weekly hours"),  # lunch
        ("2026-03-02", "17:59", "open", "weekly hours"),
        ("2026-03-02", "18:00", "closed", "weekly hours"),  # the end is excluded
        ("2026-03-07", "11:00", "open", "weekly hours"),  # Saturday
        ("2026-03-08", "11:00", "closed", "weekly hours"),  # Sunday
        ("2026-01-01", "10:00", "holiday", "holiday"),
        ("2026-02-18", "10:00", "holiday", "Spring Festival"),
        ("2026-02-21", "10:00", "open", "make-up day"),  # an exception beats the holiday
        ("2026-02-21", "19:00", "closed", "make-up day"),
        ("2026-03-06", "10:00", "closed", "training"),  # a Friday closed by exception
    ],
)
def test_verdicts(day: str, time: str, status: str, reason: str) -> None:
    verdict = CAL.verdict(shanghai(day, time))
    assert (verdict.status, verdict.reason) == (status, reason)


def test_the_local_date_decides() -> None:
    # 2026-01-01 01:00 in Shanghai is still 2025-12-31 in UTC.
    assert CAL.status(datetime(2025, 12, 31, 17, 0, tzinfo=UTC)) == "holiday"
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.status(datetime(2026, 3, 2, 10, 0))


def test_default_time_zone_comes_from_the_flow() -> None:
    spec = CalendarSpec.model_validate({"weekly": {"mon": "24h"}})
    assert Calendar.build("c", spec, "Europe/Paris").timezone.key == "Europe/Paris"
    assert Calendar.build("c", spec).timezone.key == "UTC"


def test_hours_syntax() -> None:
    assert parse_hours("09:00-12:00,13:00-24:00") == ((540, 720), (780, 1440))
    assert parse_hours("24h") == ((0, 1440),)
    assert parse_hours("closed") == ()
    for bad in ("9-5", "09:00", "25:00-26:00", "12:00-12:00", "", 5):
        with pytest.raises(ValueError, match=r"time|hours"):
            parse_hours(bad)


def test_calendar_spec_errors() -> None:
    for spec in (
        {"weekly": {"mon-fri": "24h", "fri": "closed"}},
        {"weekly": {"fri-mon": "24h"}},
        {"holidays": [{"from": "2026-01-01", "to": "2027-06-01"}]},
        {"holidays": [{"from": "2026-01-01"}]},
        {"exceptions": [{"date": "2026-01-01", "hours": "closed"}] * 2},
        {"timezone": "Nowhere/Land"},
        {"weekly": {}, "colour": "red"},
    ):
        with pytest.raises(ValidationError):
            CalendarSpec.model_validate(spec)


def test_holiday_ranges_include_both_ends() -> None:
    assert min(CAL.holidays) == date(2026, 1, 1)
    assert date(2026, 2, 16) in CAL.holidays
    assert date(2026, 2, 22) in CAL.holidays
    assert date(2026, 2, 23) not in CAL.holidays


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("5s", 5), ("2m", 120), ("1m30s", 90), ("1h", 3600), (3, 3), (1.5, 1.5)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bad_durations_and_formatting() -> None:
    for bad in ("5x", "5 s", "s", "", "-1s", True, None, "1e3s", 10**9, "9" * 50 + "s"):
        with pytest.raises(ValueError, match="bad duration"):
            parse_duration(bad)
    assert [format_duration(s) for s in (0.25, 5, 90, 3600, 3725, 0, 1.5)] == [
        "250ms",
        "5s",
        "1m30s",
        "1h",
        "1h2m5s",
        "0s",
        "1.5s",
    ]


def test_yaml_keeps_positions_and_text() -> None:
    data, source, problems = load_yaml(
        "a:\n  t: 18:00\n  d: 2026-01-01\n  01: x\n  'q': \"v w\"\n", "f"
    )
    assert problems == []
    assert data == {"a": {"t": "18:00", "d": "2026-01-01", "01": "x", "q": "v w"}}
    assert source.value(("a", "t")) == Position(2, 6, single_line=True, quoted=False)
    assert source.key(("a", "d")) == Position(3, 3, single_line=True, quoted=False)
    assert source.value(("a", "q")).shifted(2) == Position(5, 11)
    assert source.value(("a", "missing", 3)) == source.value(("a",))


def test_yaml_refuses_large_files() -> None:
    _, _, problems = load_yaml("a: " + "x" * 1_000_001, "f")
    assert [p.message for p in problems] == ["file is larger than 1 MB"]
