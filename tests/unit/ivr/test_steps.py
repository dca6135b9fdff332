"""Every step type, driven through the simulator with scripted keys and a fake clock."""

from datetime import UTC, datetime
from decimal import Decimal
from textwrap import dedent

import pytest

from telportal.ivr import (
    CallEnded,
    Collect,
    CreateCase,
    DigitsEntered,
    FilePrompt,
    Hangup,
    InputTimedOut,
    Play,
    Queue,
    Record,
    RequestCallback,
    Say,
    ScriptError,
    SilencePrompt,
    SpeechPrompt,
    TonePrompt,
    Transfer,
    load_flow,
    simulate,
)
from telportal.ivr.calendar import Calendar, CalendarSpec
from tests.unit.ivr.support import MONDAY_10, flow_text, make_flow, run, steps_taken

END = """
  end:
    type: hangup
"""


def with_end(body: str) -> str:
    return dedent(body) + END


# -- play ----------------------------------------------------------------------------------


def test_play_sends_every_kind_of_prompt_item() -> None:
    result = run(
        with_end(
            """
        language: zh
        vars: {name: "Li"}
        steps:
          greet:
            type: play
            barge_in: true
            prompt:
              - file: acme/welcome.wav
              - speech: "Hello {vars.name}, caller {caller}"
                language: en
              - 您好
              - tone: beep
                duration: 250ms
              - silence: 1s
              - tone: ringback
            next: end
        """
        )
    )
    play = result.actions[0]
    assert play == Play(
        1,
        (
            FilePrompt("acme/welcome.wav"),
            SpeechPrompt("Hello Li, caller 13800000000", "en"),
            SpeechPrompt("您好", "zh"),
            TonePrompt("beep", 0.25),
            SilencePrompt(1.0),
            TonePrompt("ringback", None),
        ),
        True,
    )
    assert result.actions[1] == Hangup("completed")


# -- menu ----------------------------------------------------------------------------------

MENU = """
steps:
  menu:
    type: menu
    prompt: Press 1 for sales, 22 for the shop.
    options: {"1": sales, "22": shop}
    timeout: 4s
    retries: 2
    no_input_retries: 1
    invalid: Not valid.
    no_input: Still there?
    on_timeout: timeout_queue
    on_invalid: invalid_queue
  sales:
    type: queue
    queue: sales
  shop:
    type: queue
    queue: shop
  timeout_queue:
    type: queue
    queue: timeouts
  invalid_queue:
    type: queue
    queue: invalid
"""


def collects(result: object) -> list[Collect]:
    return [a for a in result.actions if isinstance(a, Collect)]  # type: ignore[attr-defined]


def test_menu_takes_a_choice() -> None:
    result = run(MENU, "1")
    assert result.outcome == "queue sales"
    assert collects(result)[0].max_digits == 2  # the longest option
    assert collects(result)[0].timeout == 4.0


def test_menu_options_can_be_longer_than_one_key() -> None:
    assert run(MENU, "22").outcome == "queue shop"
    assert run(MENU, "2 1").outcome == "queue sales"  # "2" alone is not an option


def test_menu_invalid_input_replays_the_invalid_prompt_then_the_menu() -> None:
    result = run(MENU, "9 1")
    _, second = collects(result)
    assert [p.text for p in second.prompt] == [  # type: ignore[union-attr]
        "Not valid.",
        "Press 1 for sales, 22 for the shop.",
    ]
    assert result.outcome == "queue sales"
    assert result.path[0].inputs == ("9", "1")


def test_menu_gives_up_after_the_retries_on_invalid_input() -> None:
    result = run(MENU, "9 8 7 1")
    assert len(collects(result)) == 3  # the first try and two retries
    assert result.outcome == "queue invalid"
    assert result.path[0].outcome == "invalid"
    assert result.unused_keys == "1"


def test_menu_timeouts_have_their_own_retries_and_move_the_clock() -> None:
    result = run(MENU, "")
    _, second = collects(result)
    assert [p.text for p in second.prompt] == [  # type: ignore[union-attr]
        "Still there?",
        "Press 1 for sales, 22 for the shop.",
    ]
    assert result.outcome == "queue timeouts"
    assert result.path[0].inputs == ("(timeout)", "(timeout)")
    assert result.path[1].elapsed == 8.0  # two timeouts of 4 s


def test_silence_and_bad_keys_are_counted_apart() -> None:
    result = run(MENU, "9 T 8 1")
    assert result.outcome == "queue sales"
    assert result.path[0].inputs == ("9", "(timeout)", "8", "1")


def test_a_menu_without_last_try_branches_hangs_up_politely() -> None:
    body = """
    steps:
      menu:
        type: menu
        prompt: Press 1.
        options: {"1": end}
        retries: 0
    """
    assert run(with_end(body), "5").actions[-1] == Hangup("menu_failed")
    assert run(with_end(body), "").actions[-1] == Hangup("no_input")


# -- gather --------------------------------------------------------------------------------


def gather(rules: str = "", **fields: object) -> str:
    extra = "".join(f"    {k}: {v}\n" for k, v in fields.items())
    return (
        "steps:\n  ask:\n    type: gather\n    prompt: Enter your number.\n    into: account\n"
        "    invalid: Wrong.\n    retries: 1\n    on_invalid: bad\n    on_timeout: silent\n"
        f"    next: good\n{extra}"
        + (f"    validate:\n{rules}" if rules else "")
        + "  good:\n    type: hangup\n    reason: good\n"
        "  bad:\n    type: hangup\n    reason: bad\n"
        "  silent:\n    type: hangup\n    reason: silent\n"
    )


def test_gather_collects_until_the_terminator() -> None:
    result = run(gather(), "12345#")
    assert result.outcome == "hangup good"
    assert result.variables["account"] == "12345"
    assert result.path[0].inputs == ("12345#",)
    collect = collects(result)[0]
    assert (collect.max_digits, collect.terminator, collect.digit_timeout) == (20, "#", 3.0)


def test_gather_ends_on_a_pause_or_at_max_digits() -> None:
    assert run(gather(), "123 ").variables["account"] == "123"
    result = run(gather(max_digits=4, min_digits=4), "12345")
    assert result.variables["account"] == "1234"
    assert result.unused_keys == "5"
    assert run(gather(max_digits=4), "1234#").unused_keys == ""  # the # goes with the input


@pytest.mark.parametrize(
    ("rules", "good", "bad"),
    [
        ("      length: 6\n", "123456#", "12345#"),
        ("      luhn: true\n", "6222020000000007#", "6222020000000008#"),
        ("      date: YYYYMMDD\n", "20240229#", "20250229#"),
        ("      date: MMDD\n", "0229#", "1301#"),
        ("      date: DDMMYYYY\n", "31122026#", "31112026#"),
        ("      min: 1\n      max: 31\n", "31#", "32#"),
        ("      condition: startswith(digits, '9')\n", "95588#", "85588#"),
    ],
)
def test_gather_validation(rules: str, good: str, bad: str) -> None:
    assert run(gather(rules), good).outcome == "hangup good"
    result = run(gather(rules), f"{bad} {bad}")
    assert result.outcome == "hangup bad"
    assert len(result.path[0].notes) == 2
    assert "vars.account" not in str(result.variables["account"])
    assert result.variables["account"] is None


def test_gather_checks_min_digits_and_counts_retries() -> None:
    result = run(gather(min_digits=3), "12# 123#")
    assert result.outcome == "hangup good"
    assert result.path[0].notes == ("12: fewer than 3 digits",)
    _, second = collects(result)
    assert [p.text for p in second.prompt] == ["Wrong.", "Enter your number."]  # type: ignore[union-attr]
    assert run(gather(), "# #").path[0].notes == ("nothing: no digits", "nothing: no digits")


def test_gather_timeout_goes_to_on_timeout() -> None:
    result = run(gather(), "T T T")
    assert result.outcome == "hangup silent"
    assert result.path[0].inputs == ("(timeout)", "(timeout)")  # no_input_retries = retries
    assert result.unused_keys == " T"


def test_digits_holds_the_last_input() -> None:
    body = gather().replace(
        "  good:\n    type: hangup\n    reason: good\n",
        "  good:\n    type: set\n    vars: {copy: digits}\n    next: bad\n",
    )
    assert run(body, "42#").variables["copy"] == "42"


# -- say -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "as_", "language", "text"),
    [
        ("1234.5", "amount", "zh", "一千二百三十四元五角"),
        ("1234.5", "amount", "en", "one thousand two hundred thirty four point five yuan"),
        ("1234.5", "number", "en", "one thousand two hundred thirty four point five"),
        ("1234.5", "number", "zh", "一千二百三十四点五"),
        ("'4008'", "digits", "zh", "四零零八"),
        ("caller", "digits", "en", "one three eight zero zero zero zero zero zero zero zero"),
        ("'2026-03-05'", "date", "zh", "二零二六年三月五日"),
        ("now.date", "date", "en", "march second twenty twenty six"),
    ],
)
def test_say_in_both_languages(value: str, as_: str, language: str, text: str) -> None:
    body = f"""
    steps:
      s:
        type: say
        value: "{value}"
        as: {as_}
        language: {language}
        next: end
    """
    result = run(with_end(body))
    say = result.actions[0]
    assert isinstance(say, Say)
    assert (say.text, say.language) == (text, language)
    assert say.words == tuple(text) if language == "zh" else tuple(text.split())
    assert result.path[0].outcome == text


def test_say_uses_the_flow_language_and_skips_what_it_cannot_say() -> None:
    body = """
    language: zh
    vars: {due: "not a date"}
    steps:
      a:
        type: say
        value: 10
        as: amount
        currency: USD
        next: b
      b:
        type: say
        value: vars.due
        as: date
        next: end
    """
    result = run(with_end(body))
    assert [type(a).__name__ for a in result.actions] == ["Say", "Hangup"]
    assert result.actions[0].text == "十美元"  # type: ignore[union-attr]
    assert result.path[1].notes == (
        "nothing said: 'not a date' is not a date (write 2026-03-05 or 20260305)",
    )


# -- set and branch ------------------------------------------------------------------------


def test_set_assigns_in_order() -> None:
    body = """
    vars: {n: 1}
    steps:
      s:
        type: set
        vars:
          n: vars.n + 1
          doubled: vars.n * 2
          label: "'caller ' + caller"
          vip: startswith(caller, "138")
          empty: "null"
        next: end
    """
    assert run(with_end(body)).variables == {
        "n": Decimal(2),
        "doubled": Decimal(4),
        "label": "caller 13800000000",
        "vip": True,
        "empty": None,
    }


BRANCH = """
timezone: Asia/Shanghai
steps:
  b:
    type: branch
    cases:
      - when: startswith(caller, "021")
        goto: local
      - when: now.weekday >= 6
        goto: weekend
      - when: now.hour < 9 or now.hour >= 18
        goto: night
    else: day
  local:
    type: hangup
    reason: local
  weekend:
    type: hangup
    reason: weekend
  night:
    type: hangup
    reason: night
  day:
    type: hangup
    reason: day
"""


@pytest.mark.parametrize(
    ("caller", "at", "outcome", "case"),
    [
        ("02155550000", MONDAY_10, "hangup local", "case 1"),
        ("13800000000", datetime(2026, 3, 7, 2, 0, tzinfo=UTC), "hangup weekend", "case 2"),
        ("13800000000", datetime(2026, 3, 2, 12, 0, tzinfo=UTC), "hangup night", "case 3"),
        ("13800000000", MONDAY_10, "hangup day", "else"),
    ],
)
def test_branch_on_caller_and_time(caller: str, at: datetime, outcome: str, case: str) -> None:
    result = simulate(make_flow(BRANCH), "", caller, at)
    assert (result.outcome, result.path[0].outcome) == (outcome, case)


# -- hours ---------------------------------------------------------------------------------

HOURS = """
timezone: Asia/Shanghai
calendars:
  office:
    weekly:
      mon-fri: "09:00-18:00"
    holidays:
      - {from: 2026-02-16, to: 2026-02-22, name: Spring Festival}
      - 2026-05-01
    exceptions:
      - {date: 2026-02-21, hours: "10:00-16:00", name: make-up day}
      - {date: 2026-03-03, hours: closed, name: move}
steps:
  h:
    type: hours
    calendar: office
    open: open
    closed: closed
    holiday: holiday
  open:
    type: hangup
    reason: open
  closed:
    type: hangup
    reason: closed
  holiday:
    type: hangup
    reason: holiday
"""


def at_shanghai(text: str) -> datetime:
    return datetime.fromisoformat(text + "+08:00")


@pytest.mark.parametrize(
    ("when", "outcome", "why"),
    [
        ("2026-03-02T10:00", "open", "open (weekly hours)"),
        ("2026-03-02T19:00", "closed", "closed (weekly hours)"),
        ("2026-03-01T10:00", "closed", "closed (weekly hours)"),  # a Sunday
        ("2026-02-17T10:00", "holiday", "holiday (Spring Festival)"),
        ("2026-05-01T10:00", "holiday", "holiday (holiday)"),
        ("2026-02-21T11:00", "open", "open (make-up day)"),  # a Saturday in the holiday week
        ("2026-02-21T17:00", "closed", "closed (make-up day)"),
        ("2026-03-03T10:00", "closed", "closed (move)"),  # a Tuesday closed by exception
    ],
)
def test_hours_with_holidays_and_exceptions(when: str, outcome: str, why: str) -> None:
    result = run(HOURS, at=at_shanghai(when))
    assert result.outcome == f"hangup {outcome}"
    assert result.path[0].outcome == why


def test_a_holiday_without_its_own_branch_is_closed() -> None:
    body = HOURS.replace("    holiday: holiday\n", "").replace(
        "  holiday:\n    type: hangup\n    reason: holiday\n", ""
    )
    assert run(body, at=at_shanghai("2026-02-17T10:00")).outcome == "hangup closed"


def test_hours_with_a_calendar_supplied_by_the_runner() -> None:
    body = """
    steps:
      h:
        type: hours
        calendar: group
        open: end
        closed: end
    """
    flow = load_flow(flow_text(with_end(body)), "t.yaml", calendars={"group"})
    spec = CalendarSpec.model_validate({"timezone": "Europe/Paris", "holidays": ["2026-03-02"]})
    calendar = Calendar.build("group", spec)
    result = simulate(flow, "", "1", MONDAY_10, calendars={"group": calendar})
    assert result.path[0].outcome == "holiday (holiday)"


# -- queue, transfer, hangup ---------------------------------------------------------------


def test_queue_with_priority_skills_and_wait_limit() -> None:
    body = """
    vars: {tier: 3}
    steps:
      q:
        type: queue
        queue: support
        priority: vars.tier * 2
        skills: [mandarin, billing]
        max_wait: 5m
    """
    assert run(body).actions == (
        Queue("acme", "simulated", "support", 6, ("mandarin", "billing"), 300.0),
    )


@pytest.mark.parametrize(("priority", "level"), [("500", 100), ("-5", 0), ("vars.nothing", 0)])
def test_queue_priority_is_clamped_and_defaults_to_zero(priority: str, level: int) -> None:
    body = "vars: {nothing: null}\nsteps:\n  q:\n    type: queue\n    queue: q\n"
    body += f"    priority: {priority}\n"
    [queue] = run(body).actions
    assert isinstance(queue, Queue)
    assert queue.priority == level


@pytest.mark.parametrize(
    ("target", "action"),
    [
        ("number: '02150001234'", Transfer("acme", "simulated", "number", "02150001234")),
        ("agent: '{vars.agent}'", Transfer("acme", "simulated", "agent", "1001")),
        ("service: claims", Transfer("acme", "simulated", "service", "claims")),
        ("site: beijing", Transfer("acme", "simulated", "site", "beijing")),
        ("agent: '{vars.nobody}'", Hangup("transfer_failed")),
    ],
)
def test_transfer_targets(target: str, action: object) -> None:
    body = (
        f"vars: {{agent: '1001', nobody: null}}\nsteps:\n  t:\n    type: transfer\n    {target}\n"
    )
    result = run(body)
    assert result.actions == (action,)


def test_hangup_with_a_reason() -> None:
    result = run("steps:\n  bye:\n    type: hangup\n    reason: self_service\n")
    assert result.actions == (Hangup("self_service"),)
    assert result.outcome == "hangup self_service"


# -- voicemail, callback, case -------------------------------------------------------------

VOICEMAIL = """
steps:
  vm:
    type: voicemail
    prompt: Leave a message after the tone.
    max_duration: 30s
    min_duration: 2s
    subject: Message from {caller}
    fields: {called: called, hour: now.hour}
    department: support
    urgency: high
    next: end
"""


def test_voicemail_records_and_opens_a_case() -> None:
    result = run(with_end(VOICEMAIL), recording_seconds=12)
    record, case, hangup = result.actions
    assert record == Record(
        1, (SpeechPrompt("Leave a message after the tone.", "en"),), True, 30.0, "#"
    )
    assert case == CreateCase(
        tenant="acme",
        call_id="simulated",
        subject="Message from 13800000000",
        fields={"called": "", "hour": "2"},  # UTC: the flow has no time zone
        department="support",
        urgency="high",
        source="voicemail",
        recording="recording-1",
    )
    assert hangup == Hangup("completed")
    assert result.path[1].elapsed == 12.0
    assert result.path[0].outcome == "message of 12s"


def test_a_recording_too_short_makes_no_case_and_long_ones_stop_at_the_limit() -> None:
    short = run(with_end(VOICEMAIL), recording_seconds=1)
    assert [type(a).__name__ for a in short.actions] == ["Record", "Hangup"]
    assert short.path[0].outcome == "message too short (1s)"
    long = run(with_end(VOICEMAIL), recording_seconds=500)
    assert long.path[1].elapsed == 30.0


CALLBACK = """
vars: {phone: null}
steps:
  offer:
    type: callback
    prompt: Press 1 to be called back.
    queue: support
    number: coalesce(vars.phone, caller)
    timeout: 6s
    accepted: thanks
    declined: wait
  thanks:
    type: hangup
    reason: callback
  wait:
    type: queue
    queue: support
"""


def test_callback_accepted() -> None:
    result = run(CALLBACK, "1")
    assert result.actions[0] == Collect(
        1, (SpeechPrompt("Press 1 to be called back.", "en"),), 1, None, 6.0, 6.0
    )
    assert result.actions[1] == RequestCallback("acme", "simulated", "support", "13800000000")
    assert result.outcome == "hangup callback"
    assert result.path[0].outcome == "accepted (13800000000)"


@pytest.mark.parametrize(("keys", "why"), [("2", "declined"), ("", "declined (timeout)")])
def test_callback_declined(keys: str, why: str) -> None:
    result = run(CALLBACK, keys)
    assert result.outcome == "queue support"
    assert result.path[0].outcome == why
    assert not any(isinstance(a, RequestCallback) for a in result.actions)


def test_callback_without_a_number_is_declined() -> None:
    body = CALLBACK.replace("coalesce(vars.phone, caller)", "coalesce(vars.phone, '')")
    result = run(body, "1")
    assert result.outcome == "queue support"
    assert result.path[0].notes == ("no number to call back",)


def test_case_opens_with_fields_and_continues() -> None:
    body = """
    vars: {order: "A-17"}
    steps:
      c:
        type: case
        subject: "Order {vars.order} enquiry"
        fields:
          order: vars.order
          amount: 12.5
          urgent: caller == "13800000000"
        department: orders
        next: end
    """
    result = run(with_end(body))
    assert result.actions[0] == CreateCase(
        tenant="acme",
        call_id="simulated",
        subject="Order A-17 enquiry",
        fields={"order": "A-17", "amount": "12.5", "urgent": "true"},
        department="orders",
        urgency="normal",
        source="ivr",
    )
    assert result.actions[1] == Hangup("completed")


# -- the simulator's key script --------------------------------------------------------------


def test_the_caller_can_hang_up_in_the_script() -> None:
    result = run(MENU, "9 H 1")
    assert isinstance(result.transcript[-1], CallEnded)
    assert result.outcome == "caller hung up"
    assert result.unused_keys == " 1"


def test_the_transcript_interleaves_actions_and_events() -> None:
    result = run(MENU, "T1")
    kinds = [type(item).__name__ for item in result.transcript]
    assert kinds == ["Collect", "InputTimedOut", "Collect", "DigitsEntered", "Queue"]
    assert isinstance(result.transcript[1], InputTimedOut)
    assert result.transcript[3] == DigitsEntered(2, "1", False)


def test_bad_scripts_and_times_are_refused() -> None:
    with pytest.raises(ScriptError, match="not keys: 'xz'"):
        run(MENU, "1x2z")
    with pytest.raises(ValueError, match="timezone-aware"):
        run(MENU, "1", at=datetime(2026, 3, 2, 10, 0))  # naive on purpose


def test_steps_taken_helper() -> None:
    assert steps_taken(run(MENU, "1")) == ["menu", "sales"]
