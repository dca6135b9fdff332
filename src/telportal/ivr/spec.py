"""The flow language: what a flow file may contain, as pydantic models.

These models are the single source of the published JSON Schema (`flow.schema.json`,
see `telportal.ivr.schema`) and of the structural checks; the semantic checks
(expressions, the step graph, calendars by name) are in `telportal.ivr.checker`.

A flow is a mapping of named steps; each step has a `type` and names the steps that may
follow it. Steps never fall through to the next one in the file: every way out is
written, so the graph a reader sees is the graph that runs.

Expressions (`when`, `value`, `priority`, ...) are kept here as their source text; speech
texts, URLs, headers and transfer targets are templates with `{expression}` holes. Both
are parsed and type-checked by the checker, which knows where they were written.
"""

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from telportal.ivr.calendar import CalendarSpec, time_zone_name
from telportal.ivr.durations import DURATION_PATTERN, format_duration, parse_duration
from telportal.ivr.spoken import Currency, Language, SayAs

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
VAR_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
KEYS_PATTERN = r"^[0-9*#]{1,4}$"
NUMBER_PATTERN = r"^\+?[0-9]{2,20}$"
TONES = ("beep", "ringback", "busy", "dial")
TERMINAL_TYPES = frozenset({"queue", "transfer", "hangup"})

StepName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
VarName = Annotated[str, StringConstraints(pattern=VAR_PATTERN)]
Keys = Annotated[str, StringConstraints(pattern=KEYS_PATTERN)]
ServiceNumber = Annotated[str, StringConstraints(pattern=NUMBER_PATTERN)]
Urgency = Literal["low", "normal", "high", "urgent"]
TransferKind = Literal["number", "agent", "service", "site"]


def _expression_text(value: Any) -> Any:
    # `priority: 5` or `when: true` arrive as YAML numbers and booleans; the expression
    # language reads their text the same way.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    return value


ExprText = Annotated[
    str,
    BeforeValidator(_expression_text),
    StringConstraints(min_length=1),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "minLength": 1}, {"type": "number"}, {"type": "boolean"}]}
    ),
]


def _bounded(low: float, high: float) -> Any:
    def check(value: Any) -> float:
        seconds = parse_duration(value)
        if not low <= seconds <= high:
            raise ValueError(
                f"duration {format_duration(seconds)} is outside"
                f" {format_duration(low)}..{format_duration(high)}"
            )
        return seconds

    return BeforeValidator(check)


def _duration_schema(low: float) -> WithJsonSchema:
    return WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": low},
                {"type": "string", "pattern": DURATION_PATTERN},
            ]
        }
    )


InputTimeout = Annotated[float, _bounded(0.5, 60), _duration_schema(0.5)]
DigitTimeout = Annotated[float, _bounded(0.5, 30), _duration_schema(0.5)]
HttpTimeout = Annotated[float, _bounded(0.1, 30), _duration_schema(0.1)]
ShortDuration = Annotated[float, _bounded(0.05, 60), _duration_schema(0.05)]
RecordingLength = Annotated[float, _bounded(0, 600), _duration_schema(0)]
WaitLimit = Annotated[float, _bounded(1, 24 * 3600), _duration_schema(1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _relative_file(path: str) -> str:
    parts = path.replace("\\", "/").split("/")
    if path.startswith(("/", "\\")) or ":" in parts[0] or ".." in parts or not path.strip():
        raise ValueError(
            f"prompt file {path!r} must be a relative path inside the tenant's prompts"
        )
    return path


class PromptItem(_Strict):
    """One thing to play: a recorded file, speech, a tone, or silence."""

    file: Annotated[str, AfterValidator(_relative_file)] | None = Field(
        None, description="WAV file, relative to the tenant's prompt folder"
    )
    speech: str | None = Field(None, description="Text to speak; may hold {expressions}")
    language: Language | None = Field(None, description="Speech language; default: the flow's")
    tone: Literal["beep", "ringback", "busy", "dial"] | None = None
    duration: ShortDuration | None = Field(None, description="How long to play the tone")
    silence: ShortDuration | None = Field(None, description="A pause of this length")

    @model_validator(mode="after")
    def _exactly_one(self) -> "PromptItem":
        given = [k for k in ("file", "speech", "tone", "silence") if getattr(self, k) is not None]
        if len(given) != 1:
            found = f" (found {', '.join(given)})" if given else ""
            raise ValueError(
                f"a prompt item needs exactly one of file, speech, tone, silence{found}"
            )
        if self.speech is not None and not self.speech.strip():
            raise ValueError("the speech text is empty: there is nothing to play")
        if self.language is not None and self.speech is None:
            raise ValueError("'language' only applies to speech")
        if self.duration is not None and self.tone is None:
            raise ValueError("'duration' only applies to a tone")
        return self


def _prompt_items(value: Any) -> Any:
    # Shorthands: a string is speech in the flow's language; one item needs no list.
    if isinstance(value, str | dict):
        value = [value]
    if isinstance(value, list):
        return [{"speech": item} if isinstance(item, str) else item for item in value]
    return value


def _not_empty(items: list[PromptItem]) -> list[PromptItem]:
    if not items:
        raise ValueError("the prompt is empty: there is nothing to play")
    return items


class _OneOrMany:
    """JSON Schema for fields that take one item or a list of them (and prompts, a string)."""

    def __init__(self, *, text: bool) -> None:
        self.text = text

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        many = handler(core_schema)
        one = many.get("items", {})
        if self.text:
            one = {"anyOf": [{"type": "string", "minLength": 1}, one]}
        return {"anyOf": [*one.get("anyOf", [one]), {**many, "items": one, "minItems": 1}]}


Prompt = Annotated[
    list[PromptItem],
    BeforeValidator(_prompt_items),
    AfterValidator(_not_empty),
    _OneOrMany(text=True),
]

# Paths inside a step (relative to the step) where another step is named, with the name.
Targets = list[tuple[tuple[str | int, ...], str]]
# Fields (by attribute name) that name the next step; menus and branches add their own.
_TARGET_FIELDS = (
    "next",
    "on_timeout",
    "on_invalid",
    "on_error",
    "open",
    "closed",
    "holiday",
    "accepted",
    "declined",
)


class _Step(_Strict):
    note: str | None = Field(None, description="For people and editors; ignored when running")

    def targets(self) -> Targets:
        """Every step this one may continue with, and where the name is written."""
        found: Targets = []
        for field in _TARGET_FIELDS:
            value = getattr(self, field, None)
            if isinstance(value, str):
                found.append(((field,), value))
        return found

    @property
    def may_end_call(self) -> bool:
        """True if running this step can end the IVR part of the call by itself."""
        return False


class PlayStep(_Step):
    """Play a prompt, then continue with `next`."""

    type: Literal["play"]
    prompt: Prompt
    barge_in: bool = Field(False, description="A key press stops the prompt")
    next: StepName


class _Input(_Step):
    """What menus and gathers share: prompts, timeouts and retries."""

    prompt: Prompt
    timeout: InputTimeout = Field(5.0, description="Wait for the first key after the prompt")
    digit_timeout: DigitTimeout = Field(3.0, description="Wait between keys")
    retries: int = Field(2, ge=0, le=9, description="Prompts again this often after bad input")
    no_input_retries: int | None = Field(
        None, ge=0, le=9, description="Prompts again this often after silence; default: retries"
    )
    invalid: Prompt | None = Field(
        None, description="Played before prompting again after bad input"
    )
    no_input: Prompt | None = Field(None, description="Played before prompting again after silence")
    on_timeout: StepName | None = Field(None, description="After the last silent try")
    on_invalid: StepName | None = Field(None, description="After the last bad try")

    @property
    def may_end_call(self) -> bool:
        # Without on_timeout / on_invalid the caller is hung up on after the last try.
        return self.on_timeout is None or self.on_invalid is None

    @property
    def silent_retries(self) -> int:
        return self.retries if self.no_input_retries is None else self.no_input_retries


class MenuStep(_Input):
    """Prompt for a choice; each key (or key sequence) leads to a step."""

    type: Literal["menu"]
    options: dict[Keys, StepName] = Field(min_length=1)
    timeout: InputTimeout = 5.0
    digit_timeout: DigitTimeout = 2.0

    def targets(self) -> Targets:
        found: Targets = [(("options", key), target) for key, target in self.options.items()]
        return found + super().targets()


class GatherValidation(_Strict):
    """Rules the collected digits must all meet."""

    length: int | None = Field(None, ge=1, le=32, description="Exactly this many digits")
    luhn: bool = Field(False, description="The last digit is a Luhn check digit (cards)")
    date: Literal["YYYYMMDD", "YYMMDD", "MMDD", "DDMMYYYY", "MMDDYYYY"] | None = Field(
        None, description="The digits are a real calendar date in this order"
    )
    min: Decimal | None = Field(None, description="As a number, at least this")
    max: Decimal | None = Field(None, description="As a number, at most this")
    condition: ExprText | None = Field(None, description="A bool expression over `digits`")


class GatherStep(_Input):
    """Collect digits (an account number, a date...) into a variable."""

    type: Literal["gather"]
    into: VarName = Field(
        description="The variable that receives the digits: NAME, read as vars.NAME"
    )
    min_digits: int = Field(1, ge=1, le=32)
    max_digits: int = Field(20, ge=1, le=32)
    terminator: Literal["#", "*"] | None = Field("#", description="Ends the input early")
    validate_: GatherValidation | None = Field(None, alias="validate")
    next: StepName

    @model_validator(mode="after")
    def _digit_bounds(self) -> "GatherStep":
        if self.min_digits > self.max_digits:
            raise ValueError("min_digits is larger than max_digits")
        return self


class SayStep(_Step):
    """Speak a number, digits, an amount or a date, in English or Mandarin."""

    type: Literal["say"]
    value: ExprText
    as_: SayAs = Field(alias="as")
    language: Language | None = None
    currency: Currency = "CNY"
    barge_in: bool = False
    next: StepName


class SetStep(_Step):
    """Give variables new values, in order (later ones see earlier ones)."""

    type: Literal["set"]
    vars: dict[VarName, ExprText] = Field(min_length=1)
    next: StepName


class BranchCase(_Strict):
    when: ExprText = Field(description="A bool expression")
    goto: StepName


class BranchStep(_Step):
    """Go to the first case whose condition holds, else to `else`."""

    type: Literal["branch"]
    cases: list[BranchCase] = Field(min_length=1)
    else_: StepName = Field(alias="else")

    def targets(self) -> Targets:
        found: Targets = [(("cases", i, "goto"), case.goto) for i, case in enumerate(self.cases)]
        return [*found, (("else",), self.else_)]


class HoursStep(_Step):
    """Go on by the business-hours calendar: open, closed or holiday."""

    type: Literal["hours"]
    calendar: Name = Field(description="A calendar of this flow, or one supplied to it by name")
    open: StepName
    closed: StepName
    holiday: StepName | None = Field(None, description="Default: the closed step")


def _field_spec(value: Any) -> Any:
    return {"type": value} if isinstance(value, str) else value


class HttpField(_Strict):
    """A JSON field of the response that becomes a variable."""

    type: Literal["number", "string", "bool"]
    from_: Annotated[str, StringConstraints(pattern=r"^[^.]+(\.[^.]+){0,7}$")] | None = Field(
        None, alias="from", description="Dotted path in the JSON; default: the variable's name"
    )
    required: bool = Field(True, description="A missing field sends the call to on_error")


class _NameOrSpec:
    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"anyOf": [{"enum": ["number", "string", "bool"]}, handler(core_schema)]}


HttpFieldSpec = Annotated[HttpField, BeforeValidator(_field_spec), _NameOrSpec()]


class HttpStep(_Step):
    """Ask an enterprise system; 2xx goes to `next`, anything else to `on_error`."""

    type: Literal["http"]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: str = Field(description="http(s) URL; {expressions} in it are URL-encoded")
    headers: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$")], str] = {}
    body: dict[Annotated[str, StringConstraints(min_length=1)], ExprText] | None = Field(
        None, description="A JSON object; each value is an expression"
    )
    timeout: HttpTimeout = 3.0
    fields: dict[VarName, HttpFieldSpec] = Field(default_factory=dict)
    next: StepName
    on_error: StepName

    @model_validator(mode="after")
    def _body_method(self) -> "HttpStep":
        if self.body is not None and self.method in ("GET", "DELETE"):
            raise ValueError(f"a {self.method} request has no body")
        return self


class QueueStep(_Step):
    """Hand the call to a queue of agents; the IVR part of the call ends here."""

    type: Literal["queue"]
    queue: Name
    priority: ExprText = Field("0", description="A number expression; higher is served first")
    skills: list[Name] = Field(default_factory=list)
    max_wait: WaitLimit | None = None

    @property
    def may_end_call(self) -> bool:
        return True


class TransferStep(_Step):
    """Transfer to exactly one of a number, an agent, another service or another site."""

    type: Literal["transfer"]
    number: str | None = None
    agent: str | None = None
    service: str | None = None
    site: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "TransferStep":
        given = [k for k in ("number", "agent", "service", "site") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a transfer needs exactly one of number, agent, service, site")
        return self

    @property
    def target(self) -> tuple[TransferKind, str]:
        if self.number is not None:
            return "number", self.number
        if self.agent is not None:
            return "agent", self.agent
        if self.service is not None:
            return "service", self.service
        return "site", self.site or ""

    @property
    def may_end_call(self) -> bool:
        return True


class _CaseFields(_Step):
    subject: str = Field("Call from {caller}", description="A template")
    fields: dict[VarName, ExprText] = Field(default_factory=dict)
    department: Name | None = None
    urgency: Urgency = "normal"


class VoicemailStep(_CaseFields):
    """Record a message after a prompt; the message becomes a case."""

    type: Literal["voicemail"]
    prompt: Prompt
    subject: str = "Voicemail from {caller}"
    max_duration: RecordingLength = 120.0
    min_duration: RecordingLength = Field(1.0, description="Shorter recordings make no case")
    beep: bool = True
    terminator: Literal["#", "*"] | None = "#"
    next: StepName


class CallbackStep(_Step):
    """Offer to call the caller back instead of waiting."""

    type: Literal["callback"]
    prompt: Prompt
    accept: Annotated[str, StringConstraints(pattern=r"^[0-9*#]$")] = "1"
    number: ExprText = Field("caller", description="The number to call back (a string)")
    queue: Name
    timeout: InputTimeout = 5.0
    accepted: StepName
    declined: StepName


class CaseStep(_CaseFields):
    """Open a case with fields, then continue."""

    type: Literal["case"]
    next: StepName


class HangupStep(_Step):
    type: Literal["hangup"]
    reason: str = "completed"

    @property
    def may_end_call(self) -> bool:
        return True


Step = Annotated[
    PlayStep
    | MenuStep
    | GatherStep
    | SayStep
    | SetStep
    | BranchStep
    | HoursStep
    | HttpStep
    | QueueStep
    | TransferStep
    | VoicemailStep
    | CallbackStep
    | CaseStep
    | HangupStep,
    Field(discriminator="type"),
]
STEP_TYPES: tuple[str, ...] = (
    "play",
    "menu",
    "gather",
    "say",
    "set",
    "branch",
    "hours",
    "http",
    "queue",
    "transfer",
    "voicemail",
    "callback",
    "case",
    "hangup",
)


def initial_value(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    raise ValueError("a variable starts as a number, a text, true, false or null")


InitialValue = Annotated[
    Decimal | str | bool | None,
    BeforeValidator(initial_value),
    WithJsonSchema({"type": ["number", "string", "boolean", "null"]}),
]


def _version_text(value: Any) -> Any:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class _FlowFields(_Strict):
    flow: Name = Field(description="The flow's name")
    version: Annotated[
        str,
        BeforeValidator(_version_text),
        StringConstraints(min_length=1, max_length=40),
        WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "integer"}]}),
    ] = Field("1", description="Recorded with every call that runs the flow")
    description: str | None = None
    tenant: Name = Field(description="The tenant (enterprise) that owns the flow")
    numbers: list[ServiceNumber] = Field(default_factory=list, description="Service numbers")
    language: Language = Field("en", description="Default speech language: en or zh")
    timezone: Annotated[str, AfterValidator(time_zone_name)] = Field(
        "UTC", description="IANA time zone for now.* and calendars"
    )
    start: StepName | None = Field(None, description="First step; default: the first listed")
    max_steps: int = Field(200, ge=1, le=10_000, description="Steps a call may take at most")
    vars: dict[VarName, InitialValue] = Field(default_factory=dict)


class FlowHeader(_FlowFields):
    """A flow with its steps and calendars left unvalidated (the checker does those one by one)."""

    calendars: dict[Name, Any] = Field(default_factory=dict)
    steps: dict[StepName, Any] = Field(min_length=1)


class FlowSpec(_FlowFields):
    """An IVR flow: a graph of named steps run for each call to the tenant's numbers."""

    model_config = ConfigDict(title="Telportal IVR flow")

    calendars: dict[Name, CalendarSpec] = Field(
        default_factory=dict, description="Business-hours calendars used by hours steps"
    )
    steps: dict[StepName, Step] = Field(min_length=1)

    @property
    def start_step(self) -> str:
        return self.start if self.start is not None else next(iter(self.steps))
