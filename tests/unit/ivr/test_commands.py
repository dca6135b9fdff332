"""`telportal flow check` and `telportal flow run`, through typer's CliRunner."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from telportal.ivr import load_flow, simulate
from telportal.ivr.commands import flow_app
from telportal.ivr.report import render_text
from tests.unit.ivr.support import EXAMPLES

runner = CliRunner()
DEMO = str(EXAMPLES / "demo.yaml")
BAD = """flow: bad
tenant: acme
steps:
  menu:
    type: menu
    prompt: Press 1
    options: {"1": nowhere}
    timeout: 5x
"""


@pytest.fixture
def bad_flow(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD, encoding="utf-8")
    return path


def test_check_passes_clean_files() -> None:
    files = sorted(str(p) for p in EXAMPLES.glob("*.yaml"))
    result = runner.invoke(flow_app, ["check", *files])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{len(files)} flow files ok\n"


def test_check_prints_every_problem_and_fails(bad_flow: Path) -> None:
    result = runner.invoke(flow_app, ["check", DEMO, str(bad_flow)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{bad_flow}:7:20: error: no step named 'nowhere'",
        f"{bad_flow}:8:14: error: step 'menu': bad duration '5x': write seconds or a number"
        " with a unit: 500ms, 5s, 2m, 1m30s, 1h",
    ]
    assert result.stderr == "telportal flow: 2 problems in 1 of 2 files\n"


def test_check_reports_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    result = runner.invoke(flow_app, ["check", str(missing)])
    assert result.exit_code == 1
    assert (
        result.stdout == f"{missing}:1:1: error: cannot read the file: No such file or directory\n"
    )


def test_check_with_calendars_supplied_by_name(tmp_path: Path) -> None:
    flow = tmp_path / "hours.yaml"
    flow.write_text(
        "flow: h\ntenant: acme\nsteps:\n  h:\n    type: hours\n    calendar: group\n"
        "    open: end\n    closed: end\n  end:\n    type: hangup\n",
        encoding="utf-8",
    )
    assert runner.invoke(flow_app, ["check", str(flow)]).exit_code == 1
    calendars = tmp_path / "calendars.yaml"
    calendars.write_text("group:\n  weekly: {mon-fri: '09:00-18:00'}\n", encoding="utf-8")
    result = runner.invoke(flow_app, ["check", str(flow), "--calendars", str(calendars)])
    assert result.exit_code == 0, result.output
    calendars.write_text("group:\n  weekly: {funday: '09:00-18:00'}\n", encoding="utf-8")
    result = runner.invoke(flow_app, ["check", str(flow), "--calendars", str(calendars)])
    assert result.exit_code == 1
    assert "calendars.yaml:2:12: error: calendar 'group': bad day 'funday'" in result.stdout


def test_run_prints_a_stable_transcript() -> None:
    args = ["run", DEMO, "--digits", "5 1", "--caller", "13912345678", "--at", "2026-03-02T10:00"]
    first = runner.invoke(flow_app, args)
    assert first.exit_code == 0, first.output
    assert runner.invoke(flow_app, args).stdout == first.stdout
    lines = first.stdout.splitlines()
    assert lines[0].startswith("flow demo version 1 (")
    assert lines[0].endswith(") tenant acme")
    assert lines[1] == "call 13912345678 -> 4008001000 at 2026-03-02T10:00:00+08:00"
    assert lines[2:6] == [
        "transcript:",
        '  > play #1: speech[en] "Welcome to Acme."',
        "  < #1 finished",
        '  > collect #2 (1 key, timeout 5s): speech[en] "For sales, press 1. For support, press 2.'
        ' For our opening hours and address, press 9. To speak to an operator, press 0."',
    ]
    assert lines[6:] == [
        "  < #2 keys 5",
        '  > collect #3 (1 key, timeout 5s): speech[en] "Sorry, that is not a valid choice."'
        ' + speech[en] "For sales, press 1. For support, press 2. For our opening hours and'
        ' address, press 9. To speak to an operator, press 0."',
        "  < #3 keys 1",
        "  > queue sales priority 0",
        "path:",
        "     0.000s  greeting (play)",
        "     0.000s  main_menu (menu)  keys 5, 1  -> option 1",
        "     0.000s  sales (queue)  -> priority 0",
        "outcome: queue sales",
    ]


def test_run_json(tmp_path: Path) -> None:
    fixture = EXAMPLES / "bank_balance.fixture.json"
    result = runner.invoke(
        flow_app,
        [
            "run",
            str(EXAMPLES / "bank_balance.yaml"),
            "--digits",
            "6222020000000007# #",
            "--http-fixture",
            str(fixture),
            "--at",
            "2026-03-02T02:00:00+00:00",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["flow"]["name"] == "bank-balance"
    assert report["call"] == {
        "caller": "13800000000",
        "called": "4008002000",
        "at": "2026-03-02T02:00:00+00:00",
    }
    assert report["outcome"] == "hangup completed"
    assert report["variables"]["balance"] == 1234.5
    kinds = [(entry["direction"], entry["kind"]) for entry in report["transcript"]][:6]
    assert kinds == [
        ("action", "Play"),
        ("event", "MediaFinished"),
        ("action", "Collect"),
        ("event", "DigitsEntered"),
        ("action", "HttpRequest"),
        ("event", "HttpResponded"),
    ]
    assert report["transcript"][0]["prompt"][0] == {
        "kind": "TonePrompt",
        "tone": "beep",
        "duration": 0.2,
    }
    says = [entry["text"] for entry in report["transcript"] if entry["kind"] == "Say"]
    assert says == [
        "one thousand two hundred thirty four point five yuan",
        "march first twenty twenty six",
    ]
    assert [step["step"] for step in report["path"]][:3] == ["welcome", "ask_card", "lookup"]


def test_run_with_calendars_and_holidays() -> None:
    result = runner.invoke(
        flow_app,
        ["run", str(EXAMPLES / "after_hours.yaml"), "--at", "2026-02-17T10:00", "--digits", "2 1"],
    )
    assert result.exit_code == 0, result.output
    assert "check_hours (hours)  -> holiday (Spring Festival)" in result.stdout
    assert "> callback 13800000000 via queue support" in result.stdout
    assert result.stdout.rstrip().endswith("outcome: hangup completed")


def test_run_refuses_a_flow_with_problems(bad_flow: Path) -> None:
    result = runner.invoke(flow_app, ["run", str(bad_flow)])
    assert result.exit_code == 1
    assert f"{bad_flow}:7:20: error: no step named 'nowhere'" in result.stdout
    assert "fix them before running it" in result.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--at", "next tuesday"], "--at: 'next tuesday' is not an ISO 8601 time"),
        (["--digits", "12x"], "--digits: not keys: 'x'"),
        (["--http-fixture", "/nonexistent/fixture.json"], "cannot read /nonexistent/fixture.json"),
    ],
)
def test_run_refuses_bad_options(extra: list[str], message: str) -> None:
    result = runner.invoke(flow_app, ["run", DEMO, "--at", "2026-03-02T10:00", *extra])
    assert result.exit_code == 2
    assert message in result.stderr


def test_run_refuses_a_bad_fixture(tmp_path: Path) -> None:
    fixture = tmp_path / "f.json"
    fixture.write_text('{"https://x": {"status": 700}}', encoding="utf-8")
    result = runner.invoke(flow_app, ["run", DEMO, "--http-fixture", str(fixture)])
    assert result.exit_code == 2
    assert "https://x: status: Input should be less than or equal to 599" in result.stderr


def test_run_without_at_uses_the_current_time() -> None:
    result = runner.invoke(flow_app, ["run", DEMO, "--digits", "1"])
    assert result.exit_code == 0, result.output
    assert "outcome: queue sales" in result.stdout


def test_help_lists_the_commands() -> None:
    result = runner.invoke(flow_app, ["--help"])
    assert result.exit_code == 0
    assert "check" in result.stdout
    assert "run" in result.stdout


def test_the_text_form_describes_every_kind_of_action_and_event() -> None:
    flow = load_flow(
        """flow: all
tenant: acme
steps:
  ask:
    type: http
    method: POST
    url: https://x.example/log
    body: {who: caller}
    next: vm
    on_error: vm
  vm:
    type: voicemail
    prompt: [{tone: beep}, {silence: 1s}, {file: a.wav}]
    next: offer
  offer:
    type: callback
    prompt: Press 1.
    queue: support
    accepted: menu
    declined: menu
  menu:
    type: menu
    prompt: Press 1.
    options: {"1": out}
  out:
    type: transfer
    site: beijing
""",
        "all.yaml",
    )
    fixture = {"https://x.example/log": {"timeout": True}}
    text = render_text(simulate(flow, "1 T H", "1", datetime(2026, 3, 2, tzinfo=UTC), fixture))
    assert '> http #1 POST https://x.example/log {"who":"1"} (timeout 3s)' in text
    assert "< #1 http timeout" in text
    assert "> record #2 (up to 2m, beep): tone beep + silence 1s + file a.wav" in text
    assert "< #2 recorded recording-2 (10s)" in text
    assert "> case (voicemail, normal): Voicemail from 1 with recording-2" in text
    assert "> callback 1 via queue support" in text
    assert "< #4 no keys (timeout)" in text
    assert "< caller hung up (caller_hangup)" in text
    assert text.endswith("outcome: caller hung up")
