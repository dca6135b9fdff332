"""The checker finds every class of mistake, at the right line and column.

Inline flows start with two header lines (`flow: t`, `tenant: acme`), so the first line
of each body below is line 3 of the file.
"""

from textwrap import dedent

import pytest

from telportal.ivr import FlowInvalid, Problem, check_flow, load_flow
from tests.unit.ivr.support import messages, problems

PLAY_END = """
  end:
    type: hangup
"""


def test_a_clean_flow_has_no_problems() -> None:
    assert (
        messages("steps:\n  a:\n    type: play\n    prompt: hi\n    next: end\n" + PLAY_END) == []
    )


def test_problems_read_like_a_compiler() -> None:
    found = problems("steps:\n  a:\n    type: teleport\n")
    assert found == [
        Problem(
            "t.yaml",
            5,
            11,
            "step 'a': unknown step type 'teleport' (known: play, menu, gather, say, set,"
            " branch, hours, http, queue, transfer, voicemail, callback, case, hangup)",
        )
    ]
    assert str(found[0]).startswith("t.yaml:5:11: error: step 'a': unknown step type")


def test_unknown_field_is_reported_at_its_key_with_a_suggestion() -> None:
    found = messages(
        dedent(
            """
            steps:
              m:
                type: menu
                prompt: Press 1
                optoins: {"1": end}
                options: {"1": end}
        """
        )
        + PLAY_END
    )
    assert found == [
        "t.yaml:7:5: error: step 'm': unknown field 'optoins' (did you mean 'options'?)"
    ]


def test_unknown_top_level_field() -> None:
    found = messages("colour: blue\nsteps:\n  end:\n    type: hangup\n")
    assert found == ["t.yaml:3:1: error: unknown field 'colour'"]


def test_missing_fields_are_reported_at_the_step() -> None:
    found = messages("steps:\n  a:\n    type: play\n    next: end\n" + PLAY_END)
    assert found == [
        "t.yaml:4:3: error: step 'a': missing field 'prompt': this step needs something to play"
    ]
    assert messages("steps:\n  a:\n    prompt: hi\n") == [
        "t.yaml:4:3: error: step 'a': a step needs a 'type' (one of: play, menu, gather, say, set,"
        " branch, hours, http, queue, transfer, voicemail, callback, case, hangup)"
    ]


@pytest.mark.parametrize(
    ("prompt", "column", "message"),
    [
        ("[]", 13, "the prompt is empty: there is nothing to play"),
        ('""', 13, "the speech text is empty: there is nothing to play"),
        ("{language: en}", 13, "a prompt item needs exactly one of file, speech, tone, silence"),
        (
            "{speech: hi, file: a.wav}",
            13,
            "a prompt item needs exactly one of file, speech, tone, silence (found file, speech)",
        ),
        (
            "{file: ../../etc/passwd}",
            20,
            "prompt file '../../etc/passwd' must be a relative path inside the tenant's prompts",
        ),
    ],
)
def test_prompts_with_nothing_to_play(prompt: str, column: int, message: str) -> None:
    found = messages(
        f"steps:\n  m:\n    type: menu\n    prompt: {prompt}\n    options: {{'1': end}}\n"
        + PLAY_END
    )
    assert found == [f"t.yaml:6:{column}: error: step 'm': {message}"]


def test_an_empty_prompt_in_a_list_points_at_the_item() -> None:
    found = messages(
        "steps:\n  a:\n    type: play\n    prompt:\n      - hello\n      - speech: '  '\n"
        "    next: end\n" + PLAY_END
    )
    assert found == [
        "t.yaml:8:9: error: step 'a': the speech text is empty: there is nothing to play"
    ]


def test_branch_to_a_missing_step_is_reported_where_it_is_named() -> None:
    found = messages(
        dedent(
            """
            steps:
              a:
                type: branch
                cases:
                  - when: caller == "1"
                    goto: ned
                else: end
        """
        )
        + PLAY_END
    )
    assert found == ["t.yaml:8:15: error: no step named 'ned' (did you mean 'end'?)"]


def test_missing_start_step() -> None:
    assert messages("start: begin\nsteps:\n  end:\n    type: hangup\n") == [
        "t.yaml:3:8: error: the start step 'begin' does not exist"
    ]


def test_unreachable_steps_are_reported_at_their_names() -> None:
    found = messages(
        "steps:\n  a:\n    type: hangup\n  orphan:\n    type: play\n    prompt: hi\n    next: a\n"
    )
    assert found == ["t.yaml:6:3: error: step 'orphan' is never reached from 'a'"]


def test_a_menu_that_only_returns_to_itself_is_a_loop_with_no_way_out() -> None:
    found = messages(
        dedent(
            """
            steps:
              menu:
                type: menu
                prompt: Press 1 or 2
                options: {"1": again, "2": menu}
                on_timeout: menu
                on_invalid: again
              again:
                type: play
                prompt: Once more.
                next: menu
        """
        )
    )
    assert found == [
        "t.yaml:4:3: error: loop with no way out: from 'menu', 'again'"
        " no hangup, queue or transfer can be reached"
    ]


def test_a_loop_with_an_exit_is_fine() -> None:
    found = messages(
        dedent(
            """
            steps:
              menu:
                type: menu
                prompt: Press 1 or 2
                options: {"1": menu, "2": end}
                on_timeout: menu
                on_invalid: menu
        """
        )
        + PLAY_END
    )
    assert found == []


def test_a_menu_without_last_try_branches_ends_the_call_itself() -> None:
    found = messages(
        "steps:\n  menu:\n    type: menu\n    prompt: Press 1\n    options: {'1': menu}\n"
    )
    assert found == []


def test_a_self_loop_of_set_steps_is_reported_once() -> None:
    found = messages(
        "steps:\n  a:\n    type: set\n    vars: {n: 1}\n    next: b\n"
        "  b:\n    type: set\n    vars: {n: 2}\n    next: a\n"
    )
    assert found == [
        "t.yaml:4:3: error: loop with no way out: from 'a', 'b' no hangup, queue or transfer"
        " can be reached"
    ]


def test_type_errors_in_expressions_point_into_the_expression() -> None:
    found = messages(
        dedent(
            """
            vars:
              count: 0
            steps:
              a:
                type: branch
                cases:
                  - when: caller > 5
                    goto: end
                  - when: lenn(caller) == 2
                    goto: end
                  - when: vars.cuont == 1
                    goto: end
                  - when: vars.count + 1
                    goto: end
                else: end
        """
        )
        + PLAY_END
    )
    assert found == [
        "t.yaml:9:22: error: step 'a': cannot order a string and a number with '>'",
        "t.yaml:11:15: error: step 'a': unknown function lenn() (did you mean len?)",
        "t.yaml:13:15: error: step 'a': unknown variable vars.cuont (did you mean vars.count?)",
        "t.yaml:15:26: error: step 'a': expected a bool here, but this is a number",
    ]


def test_comparing_a_string_with_a_number() -> None:
    found = messages(
        "steps:\n  a:\n    type: branch\n    cases:\n      - {when: 'digits == 1', goto: end}\n"
        "    else: end\n" + PLAY_END
    )
    assert found == ["t.yaml:7:24: error: step 'a': cannot compare a string with a number"]


def test_syntax_errors_in_expressions_and_templates() -> None:
    found = messages(
        dedent(
            """
            steps:
              a:
                type: set
                vars:
                  x: (1 + 2
                next: b
              b:
                type: play
                prompt: "Hello {caller"
                next: end
        """
        )
        + PLAY_END
    )
    assert found == [
        "t.yaml:7:16: error: step 'a': syntax error: expected ')' but found end of expression",
        "t.yaml:11:20: error: step 'b': syntax error: '{' is not closed (write '{{' for a brace)",
    ]


def test_template_holes_are_type_checked() -> None:
    found = messages(
        "steps:\n  a:\n    type: play\n    prompt: 'Hi {vars.nme}'\n    next: end\n" + PLAY_END
    )
    assert found == ["t.yaml:6:18: error: step 'a': unknown variable vars.nme"]


def test_a_variable_keeps_one_type() -> None:
    found = messages(
        dedent(
            """
            vars:
              n: 1
            steps:
              a:
                type: set
                vars:
                  n: "'one'"
                next: end
        """
        )
        + PLAY_END
    )
    assert found == ["t.yaml:9:10: error: vars.n is a string here but a number at line 4"]


def test_variables_declared_by_gather_http_and_set_are_known() -> None:
    found = messages(
        dedent(
            """
            steps:
              g:
                type: gather
                prompt: Account?
                into: account
                next: h
              h:
                type: http
                url: https://x.example/{vars.account}
                fields: {balance: number}
                next: s
                on_error: end
              s:
                type: set
                vars:
                  double: vars.balance * 2
                  label: vars.account + "!"
                next: b
              b:
                type: branch
                cases:
                  - when: vars.double > 10 and len(vars.label) > 1 and http.status == 200
                    goto: end
                else: end
        """
        )
        + PLAY_END
    )
    assert found == []


@pytest.mark.parametrize(
    ("value", "column", "message"),
    [
        (
            "5x",
            14,
            "bad duration '5x': write seconds or a number with a unit: 500ms, 5s, 2m, 1m30s, 1h",
        ),
        ("-1", 14, "bad duration -1: it must be zero or more"),
        ("2h", 14, "duration 2h is outside 500ms..1m"),
        (
            "5 sec",
            14,
            "bad duration '5 sec': write seconds or a number with a unit: 500ms, 5s, 2m, 1m30s, 1h",
        ),
    ],
)
def test_bad_durations(value: str, column: int, message: str) -> None:
    found = messages(
        "steps:\n  m:\n    type: menu\n    prompt: hi\n    options: {'1': end}\n"
        f"    timeout: {value}\n" + PLAY_END
    )
    assert found == [f"t.yaml:8:{column}: error: step 'm': {message}"]


def calendar_flow(calendar: str) -> str:
    return (
        "calendars:\n  office:\n"
        + "".join(f"    {line}\n" for line in calendar.strip("\n").splitlines())
        + "steps:\n  h:\n    type: hours\n    calendar: office\n    open: end\n    closed: end\n"
        + PLAY_END
    )


@pytest.mark.parametrize(
    ("calendar", "where", "message"),
    [
        (
            "timezone: Mars/Olympus",
            "5:15",
            "unknown time zone 'Mars/Olympus': use an IANA name such as Asia/Shanghai",
        ),
        (
            "weekly:\n  funday: '09:00-17:00'",
            "6:7",
            "bad day 'funday': use mon, tue, wed, thu, fri, sat, sun",
        ),
        ("weekly:\n  mon: '9am-5pm'", "6:12", "bad time '9am': write HH:MM, e.g. 09:00"),
        (
            "weekly:\n  mon: '18:00-09:00'",
            "6:12",
            "bad hours '18:00-09:00': the end must be after the start"
            " (split hours past midnight over two days)",
        ),
        (
            "weekly:\n  mon: '09:00-12:00, 11:00-13:00'",
            "6:12",
            "hours overlap: '09:00-12:00, 11:00-13:00'",
        ),
        (
            "weekly:\n  mon-fri: 24h\n  fri: closed",
            "4:3",
            "fri is in both 'mon-fri' and 'fri' of weekly",
        ),
        (
            "holidays:\n  - 2026-02-30",
            "6:9",
            "bad date '2026-02-30': write YYYY-MM-DD, e.g. 2026-01-01",
        ),
        (
            "holidays:\n  - {from: 2026-02-22, to: 2026-02-16}",
            "6:9",
            "a holiday range must end on or after its start",
        ),
        (
            "holidays:\n  - {name: Lost}",
            "6:9",
            "a holiday needs either 'date' or both 'from' and 'to'",
        ),
        (
            "exceptions:\n  - {date: 2026-02-28, hours: '9-5'}",
            "6:35",
            "bad time '9': write HH:MM, e.g. 09:00",
        ),
    ],
)
def test_bad_calendars(calendar: str, where: str, message: str) -> None:
    found = check_flow("flow: t\ntenant: acme\n" + calendar_flow(calendar), "t.yaml")
    assert [str(p) for p in found] == [f"t.yaml:{where}: error: calendar 'office': {message}"]


def test_unknown_calendar_unless_supplied_by_name() -> None:
    body = (
        "steps:\n  h:\n    type: hours\n    calendar: office\n    open: end\n    closed: end\n"
        + PLAY_END
    )
    assert messages(body) == [
        "t.yaml:6:15: error: step 'h': unknown calendar 'office': define it under 'calendars'"
        " or supply it to the flow"
    ]
    assert messages(body, calendars={"office"}) == []


def test_yaml_level_mistakes() -> None:
    assert messages("steps:\n  a: {type: hangup, type: play}\n") == [
        "t.yaml:4:21: error: duplicate key 'type' (first at line 4)"
    ]
    aliased = messages("steps:\n  a: &end {type: hangup}\n  b: *end\n")
    assert "t.yaml:5:6: error: aliases (*name) are not allowed in flows" in aliased
    assert check_flow("steps: [", "t.yaml")[0].line == 1
    assert [str(p) for p in check_flow("", "t.yaml")] == ["t.yaml:1:1: error: the file is empty"]
    assert [str(p) for p in check_flow("- a\n", "t.yaml")] == [
        "t.yaml:1:1: error: a flow is a mapping with the keys flow, tenant and steps"
    ]
    tagged = check_flow("flow: !!python/none x\n", "t.yaml")
    assert "t.yaml:1:7: error: unsupported YAML tag tag:yaml.org,2002:python/none" in map(
        str, tagged
    )


def test_structural_rules_of_steps() -> None:
    found = messages(
        dedent(
            """
            steps:
              h:
                type: http
                method: GET
                url: ftp://x.example/
                body: {a: 1}
                next: t
                on_error: t
              t:
                type: transfer
                number: "123"
                agent: "1001"
              g:
                type: gather
                prompt: hi
                into: account
                min_digits: 8
                max_digits: 4
                next: t
              "bad name":
                type: hangup
              m:
                type: menu
                prompt: hi
                options: {"12345": t}
        """
        )
    )
    assert "t.yaml:4:3: error: step 'h': a GET request has no body" in found
    assert (
        "t.yaml:11:3: error: step 't': a transfer needs exactly one of number, agent, service, site"
        in found
    )
    assert "t.yaml:15:3: error: step 'g': min_digits is larger than max_digits" in found
    assert any(
        m.startswith("t.yaml:22:3: error: bad name 'bad name': a name starts with a letter")
        for m in found
    )
    assert (
        "t.yaml:27:15: error: step 'm': bad name '12345': menu keys are 1 to 4 of 0-9, * and #"
        in found
    )


def test_an_url_must_be_http() -> None:
    found = messages(
        "steps:\n  h:\n    type: http\n    url: ftp://x.example/\n"
        "    next: end\n    on_error: end\n" + PLAY_END
    )
    assert found == ["t.yaml:6:10: error: step 'h': the url must start with http:// or https://"]


def test_every_problem_is_reported_not_just_the_first() -> None:
    found = messages(
        dedent(
            """
            steps:
              a:
                type: play
                prompt: hi
                nxt: b
                next: b
              b:
                type: branch
                cases:
                  - when: caller > 1
                    goto: missing
                else: c
              c:
                type: say
                value: "1"
                as: roman
                next: end
        """
        )
        + PLAY_END
    )
    assert found == [
        "t.yaml:7:5: error: step 'a': unknown field 'nxt' (did you mean 'next'?)",
        "t.yaml:12:22: error: step 'b': cannot order a string and a number with '>'",
        "t.yaml:13:15: error: no step named 'missing'",
        "t.yaml:18:9: error: step 'c': as: input should be 'number', 'digits', 'amount' or 'date'",
    ]


def test_load_flow_raises_with_every_problem() -> None:
    with pytest.raises(FlowInvalid) as caught:
        load_flow(
            "flow: t\ntenant: acme\nsteps:\n  a: {type: teleport}\n  b: {type: nope}\n", "t.yaml"
        )
    assert [p.line for p in caught.value.problems] == [4, 5, 5]
    assert "(and 2 more)" in str(caught.value)


def test_an_unknown_field_does_not_hide_the_same_steps_other_problems() -> None:
    found = messages(
        "steps:\n  a:\n    type: branch\n    colour: red\n    cases:\n"
        "      - {when: 'caller > 1', goto: end}\n    else: nowhere\n" + PLAY_END
    )
    assert found == [
        "t.yaml:6:5: error: step 'a': unknown field 'colour'",
        "t.yaml:8:24: error: step 'a': cannot order a string and a number with '>'",
        "t.yaml:9:11: error: no step named 'nowhere'",
    ]
