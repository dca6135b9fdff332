"""A `UTCDateTime` written past the ORM on SQLite (`store/sqlite_rows._utc_text`) is
the text SQLAlchemy's own processors give, for any aware datetime."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, DateTime
from sqlalchemy.dialects import sqlite

from telportal.store.schema import UTCDateTime
from telportal.store.sqlite_rows import SqliteRows, _utc_text

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
    assert _utc_text(value) == SQLALCHEMY(value)


def test_utc_columns_take_it_and_other_datetimes_keep_their_own() -> None:
    assert _processor(Column("at", UTCDateTime())) is _utc_text
    plain = _processor(Column("at", DateTime()))
    assert plain is not _utc_text
    assert plain(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02 03:04:05.000000"


def test_a_storage_format_it_does_not_give_keeps_sqlalchemys() -> None:
    """Only where it gives the same text: a column stored without microseconds keeps
    the processor that drops them."""

    class Seconds(UTCDateTime):
        impl = sqlite.DATETIME(truncate_microseconds=True)

    proc = _processor(Column("at", Seconds()))
    assert proc is not _utc_text
    assert proc(datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)) == "2026-01-02 03:04:05"


def test_none_and_naive_datetimes_as_sqlalchemy_takes_them() -> None:
    assert _utc_text(None) is None
    with pytest.raises(ValueError, match="naive"):
        _utc_text(datetime(2026, 1, 2, 3, 4, 5))
    with pytest.raises(ValueError, match="naive"):
        SQLALCHEMY(datetime(2026, 1, 2, 3, 4, 5))  # type: ignore[misc]
