"""Events made from complete field values (`Event.from_fields`) are the events __init__
makes: equal, immutable, and refused when a field is missing or unknown."""

import dataclasses
from datetime import UTC, datetime

import pytest

from telportal.events import CallFinished, ConfigChanged

AT = datetime(2026, 11, 27, 6, 30, 15, 250_000, tzinfo=UTC)

FINISHED = {
    "tenant_id": "acme",
    "at": AT,
    "record_id": "r1",
    "call_id": "c1",
    "service_id": None,
    "caller": "+8613800000000",
    "called": "95555",
    "started_at": AT,
    "answered_at": None,
    "ended_at": AT,
    "end_reason": "hangup",
    "outcome": "served",
    "queue": None,
    "agent_id": None,
    "wait_seconds": None,
    "talk_seconds": 12.5,
    "hangup_by": "caller",
}


def test_from_fields_makes_the_event_init_makes() -> None:
    event = CallFinished.from_fields(FINISHED)
    assert event == CallFinished(**FINISHED)  # type: ignore[arg-type]
    assert type(event) is CallFinished
    assert dataclasses.asdict(event) == FINISHED
    assert event.subject == "call.acme.finished"
    assert hash(
        ConfigChanged.from_fields(
            {
                "tenant_id": None,
                "at": AT,
                "revision": 3,
                "entity": "site",
                "entity_id": "s",
                "action": "updated",
            }
        )
    ) == hash(
        ConfigChanged(
            tenant_id=None, at=AT, revision=3, entity="site", entity_id="s", action="updated"
        )
    )


def test_an_event_from_fields_is_still_frozen() -> None:
    event = CallFinished.from_fields(FINISHED)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.caller = "someone else"  # type: ignore[misc]


def test_from_fields_refuses_missing_and_unknown_fields() -> None:
    missing = dict(FINISHED)
    del missing["ended_at"]
    with pytest.raises(TypeError, match=r"missing: \['ended_at'\], unknown: \[\]"):
        CallFinished.from_fields(missing)
    with pytest.raises(TypeError, match=r"missing: \[\], unknown: \['colour'\]"):
        CallFinished.from_fields({**FINISHED, "colour": "blue"})
