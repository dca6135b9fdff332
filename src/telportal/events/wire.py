"""Events as JSON objects, the form WebSocket clients receive."""

import dataclasses
from datetime import datetime
from typing import Any

from telportal.events.types import Event


def event_json(event: Event) -> dict[str, Any]:
    body: dict[str, Any] = {"type": event.family, "subject": event.subject}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        body[f.name] = value.isoformat() if isinstance(value, datetime) else value
    return body
