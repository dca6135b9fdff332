"""Calendars and short ways to say times for the cases tests."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from telportal.cases import BusinessHours
from telportal.ivr.calendar import Calendar, CalendarSpec

T = "tenant-1"
OTHER = "tenant-2"
SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")

# An office in Shanghai (UTC+8 all year): 8 business hours a weekday, lunch closed.
# 2026-01-01 (Thu) is a holiday; the Spring Festival closes 02-16 (Mon) to 02-22 (Sun);
# Saturday 02-14 is a make-up working day; Friday 03-20 is closed for training.
OFFICE = Calendar.build(
    "office",
    CalendarSpec.model_validate(
        {
            "timezone": "Asia/Shanghai",
            "weekly": {"mon-fri": "09:00-12:00, 13:00-18:00", "sat, sun": "closed"},
            "holidays": [
                "2026-01-01",
                {"from": "2026-02-16", "to": "2026-02-22", "name": "Spring Festival"},
            ],
            "exceptions": [
                {"date": "2026-02-14", "hours": "09:00-18:00", "name": "make-up day"},
                {"date": "2026-03-20", "hours": "closed", "name": "training"},
            ],
        }
    ),
)


def office() -> BusinessHours:
    return BusinessHours(T, OFFICE)


def sh(day: str, hhmm: str) -> datetime:
    """A Shanghai wall-clock time as an aware datetime."""
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=SHANGHAI)


def at(zone: ZoneInfo, day: str, hhmm: str, fold: int = 0) -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=zone, fold=fold)


def utc(day: str, hhmm: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=UTC)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def calendar(timezone: str, weekly: dict[str, str], **more: object) -> Calendar:
    spec = CalendarSpec.model_validate({"timezone": timezone, "weekly": weekly, **more})
    return Calendar.build("test", spec)
