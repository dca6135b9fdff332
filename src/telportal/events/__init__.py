"""Typed events and the bus that carries them between parts of the platform."""

from telportal.events.bus import EventBus, InProcessBus, Subscription
from telportal.events.types import ConfigChanged, Event, PhoneRegistration

__all__ = [
    "ConfigChanged",
    "Event",
    "EventBus",
    "InProcessBus",
    "PhoneRegistration",
    "Subscription",
]
