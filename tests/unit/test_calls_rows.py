"""The call records' rules without a database (`telportal.calls_rows`): what each
operation makes of a row, what an INSERT and an UPDATE then carry, what is refused,
and which calls stay remembered."""

from datetime import UTC, datetime, timedelta
from typing import Any

from telportal.calls_rows import (
    AddLeg,
    Answered,
    CallRow,
    Connected,
    Finish,
    Key,
    Queued,
    RecordOp,
    SaveIvr,
    Start,
    play,
    remember,
    remembered_rows,
    unread,
)
from telportal.errors import Conflict, Invalid, NotFound

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
SERVICES = {("svc-1", "t1")}


def _start(call: str, tenant: str = "t1", service: str | None = "svc-1") -> Start:
    return Start(tenant, call, f"rec-{call}", "site-a", "inbound", "1001", "400", service, T0)


def _finish(call: str, at: datetime, tenant: str = "t1") -> Finish:
    return Finish(tenant, call, "peer hung up", at, None, "caller")


def test_a_call_started_and_finished_in_one_write_is_one_insert_of_what_was_set() -> None:
    rows: dict[Key, CallRow] = {}
    ops: list[RecordOp] = [
        _start("c1"),
        Answered("t1", "c1", T0 + timedelta(seconds=1)),
        SaveIvr("t1", "c1", [{"step": "welcome"}], ["1"], "hangup completed", 3),
        _finish("c1", T0 + timedelta(seconds=5)),
    ]
    played = play(ops, rows, SERVICES)
    assert played.refused == []
    assert list(played.applied) == [("t1", "c1")]
    [row] = played.started
    assert row.changed == {}  # a new row is inserted whole, never updated
    assert row.inserted() == {
        "id": "rec-c1", "tenant_id": "t1", "call_id": "c1", "site": "site-a",
        "direction": "inbound", "caller": "1001", "called": "400", "service_id": "svc-1",
        "started_at": T0, "ivr_path": [{"step": "welcome"}], "digits": ["1"], "legs": [],
        "transfers": [], "answered_at": T0 + timedelta(seconds=1), "flow_version": 3,
        "outcome": "hangup completed", "ended_at": T0 + timedelta(seconds=5),
        "end_reason": "peer hung up", "hangup_by": "caller",
    }  # fmt: skip
    [event] = played.events
    assert (event.record_id, event.call_id, event.outcome) == ("rec-c1", "c1", "hangup completed")
    assert event.answered_at == T0 + timedelta(seconds=1)


def test_none_is_left_out_of_an_insert_so_the_column_is_sql_null() -> None:
    played = play([_start("c1", service=None)], {}, SERVICES)
    assert "service_id" not in played.started[0].inserted()


def test_a_call_written_before_is_updated_in_the_columns_that_changed_only() -> None:
    remembered = {("t1", "c1"): play([_start("c1")], {}, SERVICES).started[0].values}
    rows = remembered_rows([Queued("t1", "c1", "sales", T0)], remembered)
    ops: list[RecordOp] = [
        Queued("t1", "c1", "sales", T0 + timedelta(seconds=2)),
        Connected("t1", "c1", "u-7", "1007", None, None, T0 + timedelta(seconds=12)),
        _finish("c1", T0 + timedelta(seconds=72)),
    ]
    played = play(ops, rows, SERVICES)
    assert played.started == []
    assert rows[("t1", "c1")].updated() == {
        "queue": "sales", "queued_at": T0 + timedelta(seconds=2), "agent_id": "u-7",
        "agent_extension": "1007", "connected_at": T0 + timedelta(seconds=12),
        "wait_seconds": 10.0, "ended_at": T0 + timedelta(seconds=72),
        "end_reason": "peer hung up", "hangup_by": "caller", "talk_seconds": 60.0,
        "id": "rec-c1", "tenant_id": "t1",
    }  # fmt: skip
    # The remembered columns are a copy's: they change once the write commits.
    assert "queue" not in remembered[("t1", "c1")]


def test_answered_keeps_the_first_time_and_legs_add_up() -> None:
    rows: dict[Key, CallRow] = {}
    at = T0 + timedelta(seconds=3)
    ops: list[RecordOp] = [
        _start("c1"),
        Answered("t1", "c1", at),
        Answered("t1", "c1", at + timedelta(seconds=9)),
        AddLeg("t1", "c1", {"kind": "agent", "started": at}),
        AddLeg("t1", "c1", {"kind": "trunk"}),
    ]
    play(ops, rows, SERVICES)
    row = rows[("t1", "c1")]
    assert row.get("answered_at") == at
    assert row.get("legs") == [{"kind": "agent", "started": at.isoformat()}, {"kind": "trunk"}]


def test_what_the_rules_refuse_is_returned_and_the_rest_applied() -> None:
    rows: dict[Key, CallRow] = {}
    ops: list[RecordOp] = [
        _start("c1"),
        _start("c1"),  # twice
        _start("c2", tenant="t2"),  # a service of another tenant
        Answered("t1", "nobody", T0),  # never started
        _finish("c1", T0),
        _finish("c1", T0),  # twice
    ]
    played = play(ops, rows, SERVICES)
    errors = [(type(r.error), r.op.call_id) for r in played.refused]
    assert errors == [(Conflict, "c1"), (Invalid, "c2"), (NotFound, "nobody"), (Conflict, "c1")]
    assert list(rows) == [("t1", "c1")]
    assert len(played.events) == 1


def test_rows_are_read_for_calls_neither_remembered_nor_started_in_trust() -> None:
    remembered = {("t1", "old"): {"id": "r", "tenant_id": "t1"}}
    ops: list[RecordOp] = [_start("new"), Answered("t1", "new", T0), _finish("old", T0)]
    ops.append(Answered("t1", "elsewhere", T0))
    rows = remembered_rows(ops, remembered)
    assert list(rows) == [("t1", "old")]
    assert [op.call_id for op in unread(ops, rows, trusting=True)] == ["elsewhere"]
    assert [op.call_id for op in unread(ops, rows, trusting=False)] == [
        "new", "new", "elsewhere",
    ]  # fmt: skip


def test_open_calls_are_remembered_finished_ones_forgotten_the_oldest_past_the_limit() -> None:
    remembered: dict[Key, dict[str, Any]] = {}
    rows: dict[Key, CallRow] = {}
    played = play([_start(f"c{i}") for i in range(4)], rows, SERVICES)
    remember(remembered, rows, played.applied, limit=3)
    assert list(remembered) == [("t1", "c1"), ("t1", "c2"), ("t1", "c3")]
    ops: list[RecordOp] = [_finish("c2", T0), Answered("t1", "c1", T0)]
    rows = remembered_rows(ops, remembered)
    played = play(ops, rows, SERVICES)
    remember(remembered, rows, played.applied, limit=3)
    # c2 is finished; c1 was written to last, so it is now the newest.
    assert list(remembered) == [("t1", "c3"), ("t1", "c1")]
    assert remembered[("t1", "c1")]["answered_at"] == T0
