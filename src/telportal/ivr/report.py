"""Simulation results as stable text for people and as JSON for programs.

The text form is meant to be read and diffed: one line per action (`>`) and event (`<`),
then the path with times relative to the start of the call, then the outcome. Nothing in
it depends on the machine or the wall clock, so two runs of the same flow with the same
script print the same text.
"""

import json
from collections.abc import Mapping
from dataclasses import asdict, fields, is_dataclass
from decimal import Decimal
from typing import Any

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
from telportal.ivr.durations import format_duration
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
from telportal.ivr.expr.values import format_number
from telportal.ivr.record import Visit
from telportal.ivr.simulator import SimulationResult

_BODY_PREVIEW = 120


def describe_prompt(prompt: tuple[PromptPart, ...]) -> str:
    parts = []
    for part in prompt:
        if isinstance(part, SpeechPrompt):
            parts.append(f"speech[{part.language}] {json.dumps(part.text, ensure_ascii=False)}")
        elif isinstance(part, FilePrompt):
            parts.append(f"file {part.path}")
        elif isinstance(part, TonePrompt):
            length = f" {format_duration(part.duration)}" if part.duration is not None else ""
            parts.append(f"tone {part.tone}{length}")
        elif isinstance(part, SilencePrompt):
            parts.append(f"silence {format_duration(part.duration)}")
    return " + ".join(parts)


def describe(item: Action | Event) -> str:  # noqa: PLR0911, PLR0912 - one line per kind
    match item:
        case Play():
            barge_in = " (barge-in)" if item.barge_in else ""
            return f"> play #{item.ref}{barge_in}: {describe_prompt(item.prompt)}"
        case Say():
            return f"> say #{item.ref} [{item.language}]: {item.text}"
        case Collect():
            keys = f"{item.max_digits} key{'s' if item.max_digits != 1 else ''}"
            end = f", ends with {item.terminator}" if item.terminator else ""
            timing = f"timeout {format_duration(item.timeout)}"
            return f"> collect #{item.ref} ({keys}{end}, {timing}): {describe_prompt(item.prompt)}"
        case HttpRequest():
            body = f" {item.body}" if item.body is not None else ""
            timing = f"(timeout {format_duration(item.timeout)})"
            return f"> http #{item.ref} {item.method} {item.url}{body} {timing}"
        case Record():
            limit = f"up to {format_duration(item.max_duration)}{', beep' if item.beep else ''}"
            return f"> record #{item.ref} ({limit}): {describe_prompt(item.prompt)}"
        case CreateCase():
            shown = ", ".join(f"{k}={v}" for k, v in item.fields.items())
            extra = f" [{shown}]" if shown else ""
            where = f" for {item.department}" if item.department else ""
            recording = f" with {item.recording}" if item.recording else ""
            return (
                f"> case ({item.source}, {item.urgency}){where}: {item.subject}{extra}{recording}"
            )
        case RequestCallback():
            return f"> callback {item.number} via queue {item.queue}"
        case Queue():
            skills = f" skills {', '.join(item.skills)}" if item.skills else ""
            wait = (
                f" max wait {format_duration(item.max_wait)}" if item.max_wait is not None else ""
            )
            return f"> queue {item.queue} priority {item.priority}{skills}{wait}"
        case Transfer():
            return f"> transfer {item.kind} {item.target}"
        case Hangup():
            return f"> hangup ({item.reason})"
        case MediaFinished():
            return f"< #{item.ref} finished"
        case DigitsEntered():
            return f"< #{item.ref} keys {item.digits or '(none)'}{'#' if item.terminated else ''}"
        case InputTimedOut():
            return f"< #{item.ref} no keys (timeout)"
        case HttpResponded():
            text = item.body.decode("utf-8", "replace")
            if len(text) > _BODY_PREVIEW:
                text = text[:_BODY_PREVIEW] + "..."
            return f"< #{item.ref} http {item.status} {text}".rstrip()
        case HttpFailed():
            return f"< #{item.ref} http {item.reason}{': ' + item.detail if item.detail else ''}"
        case RecordingFinished():
            return f"< #{item.ref} recorded {item.recording} ({format_duration(item.duration)})"
        case CallEnded():
            return f"< caller hung up ({item.reason})"
    raise AssertionError(f"cannot describe {item!r}")


def describe_visit(visit: Visit) -> str:
    line = f"  {visit.elapsed:8.3f}s  {visit.step} ({visit.type})"
    if visit.inputs:
        line += f"  keys {', '.join(visit.inputs)}"
    if visit.outcome:
        line += f"  -> {visit.outcome}"
    return line + "".join(f"\n             note: {note}" for note in visit.notes)


def render_text(result: SimulationResult) -> str:
    flow, call, record = result.flow, result.call, result.record
    lines = [
        f"flow {flow.name} version {flow.version} ({flow.digest}) tenant {flow.tenant}",
        f"call {call.caller} -> {call.called or '-'} at {result.at.isoformat()}",
        "transcript:",
        *(f"  {describe(item)}" for item in result.transcript),
        "path:",
        *(describe_visit(visit) for visit in record.path),
        f"outcome: {record.outcome or 'unfinished'}",
    ]
    if record.variables:
        shown = ", ".join(f"{k}={_plain(v)}" for k, v in sorted(record.variables.items()))
        lines.append(f"variables: {shown}")
    if result.unused_keys.strip():
        lines.append(f"unused keys: {result.unused_keys.strip()}")
    return "\n".join(lines)


def _plain(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format_number(value)
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value)


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, tuple | list):
        return [_json(item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _entry(item: Action | Event) -> dict[str, Any]:
    assert is_dataclass(item)
    kind = type(item).__name__
    direction = "event" if type(item).__module__.endswith(".events") else "action"
    body = {f.name: _json(getattr(item, f.name)) for f in fields(item)}
    if isinstance(item, Play | Collect | Record):
        body["prompt"] = [{"kind": type(p).__name__, **asdict(p)} for p in item.prompt]
    return {"direction": direction, "kind": kind, **body}


def render_json(result: SimulationResult) -> dict[str, Any]:
    flow, call, record = result.flow, result.call, result.record
    return {
        "flow": {
            "name": flow.name,
            "version": flow.version,
            "digest": flow.digest,
            "tenant": flow.tenant,
        },
        "call": {"caller": call.caller, "called": call.called, "at": result.at.isoformat()},
        "transcript": [_entry(item) for item in result.transcript],
        "path": [
            {
                "step": v.step,
                "type": v.type,
                "elapsed": round(v.elapsed, 3),
                "at": v.at.isoformat(),
                "inputs": list(v.inputs),
                "outcome": v.outcome,
                "notes": list(v.notes),
            }
            for v in record.path
        ],
        "outcome": record.outcome,
        "variables": _json(dict(record.variables)),
        "unused_keys": result.unused_keys.strip(),
    }
