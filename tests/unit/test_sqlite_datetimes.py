"""A `UTCDateTime` written past the ORM on SQLite (`store/row_values.utc_text`) is
the text SQLAlchemy's own processors give, for any aware datetime; `iso_text` is
`isoformat`'s."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, DateTime
from sqlalchemy.dialects import sqlite

from telportal.store.row_values import iso_text, utc_text
from telportal.store.schema import UTCDateTime
from telportal.store.sqlite_rows import SqliteRows

DIALECT = sqlite.dialect()
SQLALCHEMY = UTCDateTime().dialect_impl(DIALECT).bind_processor(DIALECT)
ZONES = st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-23 * 60, 23 * 60)
)


def _processor(column: Column[Any]) -> Any:
    return SqliteRows(DIALECT)._processors([column])[0]


@given(st.datetimes(datetime(2, 1, 1), datetime(9998, 12, 31), timezones=st.just(UTC) | ZONES))
def test_any_aware_datetime_gives_sqlalchemys_text(value: datetime) -> None:
    assert SQLALCHEMY is not None
    assert utc_text(value) == SQLALCHEMY(value)


def test_datetimes_one_after_another_in_and_across_seconds() -> None:
    """The text up to the second is kept from one datetime to the next (`_LastSecond`):
    never for a datetime of another second, whatever its zone."""
    assert SQLALCHEMY is not None
    t = datetime(2026, 11, 27, 23, 59, 59, 999999, tzinfo=UTC)
    plus8 = timezone(timedelta(hours=8))
    sequence = [
        t,
        t.replace(microsecond=0),
        t + timedelta(microseconds=1),  # the next second, the next day
        t.astimezone(plus8),  # the same instant written in another zone
        (t + timedelta(microseconds=1)).astimezone(plus8),
        t.replace(year=2025),  # all fields equal but one
        t.replace(month=10),
        t,
    ]
    assert [utc_text(v) for v in sequence] == [SQLALCHEMY(v) for v in sequence]


@given(st.datetimes(datetime(2, 1, 1), datetime(9998, 12, 31), timezones=st.just(UTC) | ZONES))
def test_iso_text_is_isoformat(value: datetime) -> None:
    assert iso_text(value) == value.isoformat()
    whole = value.replace(microsecond=0)  # isoformat leaves out a zero fraction
    assert iso_text(whole) == whole.isoformat()


def test_iso_text_and_utc_text_in_turn_share_their_second() -> None:
    t = datetime(2026, 11, 27, 23, 59, 59, 5, tzinfo=UTC)
    sequence = [t, t + timedelta(seconds=1), t.replace(microsecond=0), t.replace(year=999)]
    assert [(iso_text(v), utc_text(v)) for v in sequence] == [
        (v.isoformat(), SQLALCHEMY(v))
        for v in sequence  # type: ignore[misc]
    ]


def test_utc_columns_take_it_and_other_datetimes_keep_their_own() -> None:
    assert _processor(Column("at", UTCDateTime())) is utc_text
    plain = _processor(Column("at", DateTime()))
    assert plain is not utc_text
    assert plain(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02 03:04:05.000000"


def test_a_storage_format_it_does_not_give_keeps_sqlalchemys() -> None:
    """Only where it gives the same text: a column stored without microseconds keeps
    the processor that drops them."""

    class Seconds(UTCDateTime):
        impl = sqlite.DATETIME(truncate_microseconds=True)

    proc = _processor(Column("at", Seconds()))
    assert proc is not utc_text
    assert proc(datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)) == "2026-01-02 03:04:05"


def test_none_and_naive_datetimes_as_sqlalchemy_takes_them() -> None:
    assert utc_text(None) is None
    with pytest.raises(ValueError, match="naive"):
        utc_text(datetime(2026, 1, 2, 3, 4, 5))
    with pytest.raises(ValueError, match="naive"):
        SQLALCHEMY(datetime(2026, 1, 2, 3, 4, 5))  # type: ignore[misc]
