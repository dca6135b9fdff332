"""HTTP steps: requests built safely, answers turned into variables, failures falling back."""

import json
from typing import Any

import pytest

from telportal.ivr import FixtureError, HttpFixture, HttpRequest
from tests.unit.ivr.support import run

HTTP = """
vars: {account: "12 34/5", token: "t0k"}
steps:
  ask:
    type: http
    method: POST
    url: https://crm.example/api/accounts/{vars.account}?from={caller}
    headers:
      Authorization: Bearer {vars.token}
    body:
      account: vars.account
      amount: 12.5
      count: 3
      vip: true
      tags: "['a', 'b']"
    timeout: 2s
    fields:
      balance: number
      name: string
      vip: {type: bool, required: false}
      city: {type: string, from: address.city}
    next: ok
    on_error: fallback
  ok:
    type: hangup
    reason: ok
  fallback:
    type: branch
    cases:
      - when: http.status == 404
        goto: not_found
      - when: http.error == "timeout"
        goto: slow
    else: broken
  not_found:
    type: hangup
    reason: not_found
  slow:
    type: hangup
    reason: slow
  broken:
    type: hangup
    reason: broken
"""
URL = "https://crm.example/api/accounts/12%2034%2F5?from=13800000000"
GOOD = {"balance": 1234.5, "name": "Li Lei", "vip": True, "address": {"city": "Shanghai"}}


def answer(response: dict[str, Any]) -> Any:
    return run(HTTP, http={f"POST {URL}": response})


def test_the_request_is_built_from_templates_and_expressions() -> None:
    result = answer({"json": GOOD})
    request = result.actions[0]
    assert isinstance(request, HttpRequest)
    assert (request.method, request.url, request.timeout) == ("POST", URL, 2.0)
    assert request.headers == (
        ("Authorization", "Bearer t0k"),
        ("Content-Type", "application/json"),
    )
    assert request.body is not None
    assert json.loads(request.body) == {
        "account": "12 34/5",
        "amount": 12.5,
        "count": 3,
        "vip": True,
        "tags": ["a", "b"],
    }


def test_json_fields_become_variables() -> None:
    result = answer({"json": GOOD})
    assert result.outcome == "hangup ok"
    assert result.path[0].outcome == "status 200"
    assert {k: result.variables[k] for k in ("balance", "name", "vip", "city")} == {
        "balance": pytest.approx(1234.5),
        "name": "Li Lei",
        "vip": True,
        "city": "Shanghai",
    }
    assert str(result.variables["balance"]) == "1234.5"  # a Decimal, exact


def test_optional_fields_may_be_missing() -> None:
    body = {k: v for k, v in GOOD.items() if k != "vip"}
    result = answer({"json": body})
    assert result.outcome == "hangup ok"
    assert result.variables["vip"] is None


@pytest.mark.parametrize(
    ("response", "outcome", "why"),
    [
        ({"timeout": True}, "hangup slow", "error: timeout"),
        ({"error": "connection refused"}, "hangup broken", "error: error (connection refused)"),
        ({"status": 500, "json": GOOD}, "hangup broken", "error: status (status 500)"),
        ({"status": 404, "json": {}}, "hangup not_found", "error: status (status 404)"),
        ({"body": "<html>oops</html>"}, "hangup broken", "error: bad_json (JSONDecodeError)"),
        ({"body": "NaN"}, "hangup broken", "error: bad_json (ValueError)"),
        ({"json": [1, 2]}, "hangup broken", "error: missing_field (balance)"),
        (
            {"json": {**GOOD, "balance": "12"}},
            "hangup broken",
            "error: bad_field (balance is not a number)",
        ),
        (
            {"json": {**GOOD, "balance": True}},
            "hangup broken",
            "error: bad_field (balance is not a number)",
        ),
        (
            {"json": {**GOOD, "balance": 1e20}},
            "hangup broken",
            "error: bad_field (balance is not a number)",
        ),
        ({"json": {**GOOD, "vip": 1}}, "hangup broken", "error: bad_field (vip is not a bool)"),
        ({"json": {**GOOD, "name": None}}, "hangup broken", "error: missing_field (name)"),
        (
            {"json": {**GOOD, "address": "x"}},
            "hangup broken",
            "error: missing_field (address.city)",
        ),
        ({"body": "[" * 5000 + "]" * 5000}, "hangup broken", "error: bad_json (RecursionError)"),
        (
            {"body": " " * 70_000 + "{}"},
            "hangup broken",
            "error: too_large (more than 65536 bytes)",
        ),
    ],
)
def test_failures_fall_back_to_on_error(response: dict[str, Any], outcome: str, why: str) -> None:
    result = answer(response)
    assert result.outcome == outcome
    assert result.path[0].outcome == why
    assert result.variables["balance"] is None  # nothing is half set


def test_a_timeout_moves_the_clock_by_the_step_timeout() -> None:
    result = answer({"timeout": True})
    assert [v.elapsed for v in result.path] == [0.0, 2.0, 2.0]


def test_http_variables_describe_the_last_answer() -> None:
    body = HTTP.replace(
        "  ok:\n    type: hangup\n    reason: ok\n",
        "  ok:\n    type: set\n    vars: {seen: 'string(http.status) + string(http.ok)'}\n"
        "    next: broken\n",
    )
    result = run(body, http={URL: {"json": GOOD}})  # a URL key matches any method
    assert result.variables["seen"] == "200true"


def test_an_unknown_url_is_an_error() -> None:
    result = run(HTTP)
    assert result.outcome == "hangup broken"
    assert result.path[0].outcome == f"error: error (no fixture for POST {URL})"


def test_a_header_cannot_smuggle_a_line_break() -> None:
    body = HTTP.replace('token: "t0k"', 'token: "x\\r\\nX-Admin: yes"')
    result = run(body, http={f"POST {URL}": {"json": GOOD}})
    assert not any(isinstance(a, HttpRequest) for a in result.actions)
    assert result.path[0].outcome == "error: request (a header value holds a line break)"
    assert result.outcome == "hangup broken"


def test_without_declared_fields_any_2xx_answer_is_success() -> None:
    body = """
    steps:
      notify:
        type: http
        url: https://crm.example/ping
        next: done
        on_error: done
      done:
        type: hangup
    """
    result = run(body, http={"https://crm.example/ping": {"status": 204, "body": "not json"}})
    assert result.path[0].outcome == "status 204"
    request = result.actions[0]
    assert isinstance(request, HttpRequest)
    assert (request.method, request.body, request.headers) == ("GET", None, ())


def test_fixtures_are_validated() -> None:
    with pytest.raises(FixtureError, match="give at most one of json, body, timeout, error"):
        HttpFixture({"https://x": {"json": {}, "timeout": True}})
    with pytest.raises(FixtureError, match="status"):
        HttpFixture({"https://x": {"status": 99}})
    with pytest.raises(FixtureError, match="a fixture maps URLs"):
        HttpFixture.from_text("- a\n")
    with pytest.raises(FixtureError, match="not YAML or JSON"):
        HttpFixture.from_text("{")
    assert HttpFixture.from_text("").responses == {}
    fixture = HttpFixture.from_text('{"https://x": {"json": null}}')
    assert fixture.responses["https://x"].content() == b"null"
