"""Typed events and the bus that carries them between parts of the platform."""

from telportal.events.bus import EventBus, InProcessBus, Subscription
from telportal.events.types import (
    AgentStatus,
    CallFinished,
    CallState,
    CaseAlert,
    CaseEscalated,
    ConfigChanged,
    DataChanged,
    Event,
    PhoneRegistration,
    QueueStatus,
    ScreenPop,
)

__all__ = [
    "AgentStatus",
    "CallFinished",
    "CallState",
    "CaseAlert",
    "CaseEscalated",
    "ConfigChanged",
    "DataChanged",
    "Event",
    "EventBus",
    "InProcessBus",
    "PhoneRegistration",
    "QueueStatus",
    "ScreenPop",
    "Subscription",
]
