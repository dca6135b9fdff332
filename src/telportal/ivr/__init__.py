"""IVR flows (MISSION M3, M4, M5): the flow language, its checker, a pure interpreter and a
simulator.

- `check_flow(text, filename)` lists every problem with its line and column;
  `load_flow(...)` gives a runnable `Flow` or raises `FlowInvalid`.
- `FlowRun(flow, call, clock)` runs one call: `start()` and `handle(event)` return
  actions for the call layer (see `actions` and `events`); it does no IO.
- `simulate(flow, digits, caller, at, http_fixture)` drives a run with scripted keys.
- `telportal.ivr.commands.flow_app` is the `telportal flow` command group.

The language is described for flow authors in docs/flows.md.
"""

from telportal.ivr.actions import (
    Action,
    Collect,
    CreateCase,
    FilePrompt,
    Hangup,
    HttpRequest,
    Play,
    PromptPart,
    Queue,
    Record,
    RequestCallback,
    Say,
    SilencePrompt,
    SpeechPrompt,
    TonePrompt,
    Transfer,
)
from telportal.ivr.calendar import Calendar, CalendarSpec
from telportal.ivr.checker import check_flow, load_calendars, load_flow, load_flow_file
from telportal.ivr.demo import demo_flow_text, load_demo_flow
from telportal.ivr.events import (
    CallEnded,
    DigitsEntered,
    Event,
    HttpFailed,
    HttpResponded,
    InputTimedOut,
    MediaFinished,
    RecordingFinished,
)
from telportal.ivr.fixtures import FixtureError, HttpFixture
from telportal.ivr.flow import Flow
from telportal.ivr.interpreter import FlowRun
from telportal.ivr.problems import FlowInvalid, Problem
from telportal.ivr.record import CallInfo, CallRecord, Visit
from telportal.ivr.schema import flow_json_schema
from telportal.ivr.simulator import ScriptError, SimulationResult, simulate
from telportal.ivr.spec import FlowSpec
from telportal.ivr.spoken import Spoken, say

__all__ = [
    "Action",
    "Calendar",
    "CalendarSpec",
    "CallEnded",
    "CallInfo",
    "CallRecord",
    "Collect",
    "CreateCase",
    "DigitsEntered",
    "Event",
    "FilePrompt",
    "FixtureError",
    "Flow",
    "FlowInvalid",
    "FlowRun",
    "FlowSpec",
    "Hangup",
    "HttpFailed",
    "HttpFixture",
    "HttpRequest",
    "HttpResponded",
    "InputTimedOut",
    "MediaFinished",
    "Play",
    "Problem",
    "PromptPart",
    "Queue",
    "Record",
    "RecordingFinished",
    "RequestCallback",
    "Say",
    "ScriptError",
    "SilencePrompt",
    "SimulationResult",
    "SpeechPrompt",
    "Spoken",
    "TonePrompt",
    "Transfer",
    "Visit",
    "check_flow",
    "demo_flow_text",
    "flow_json_schema",
    "load_calendars",
    "load_demo_flow",
    "load_flow",
    "load_flow_file",
    "say",
    "simulate",
]
