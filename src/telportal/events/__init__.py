"""Typed events and the bus that carries them between parts of the platform."""

from telportal.events.bus import EventBus, InProcessBus, Subscription
from telportal.events.types import ConfigChanged, Event

__all__ = ["ConfigChanged", "Event", "EventBus", "InProcessBus", "Subscription"]
