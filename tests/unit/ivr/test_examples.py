"""The shipped flows: the demo and every example pass the checker and the JSON Schema."""

import json
from pathlib import Path

import pytest

from telportal.ivr import (
    HttpFixture,
    check_flow,
    demo_flow_text,
    load_demo_flow,
    load_flow_file,
    simulate,
)
from telportal.ivr.schema import published_schema, schema_text
from telportal.ivr.yamlsource import load_yaml
from tests.unit.ivr.jsonschema_subset import validate
from tests.unit.ivr.support import CALLER, EXAMPLES, MONDAY_10, ROOT

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


def test_there_are_a_demo_and_at_least_four_more_examples() -> None:
    names = {path.name for path in EXAMPLE_FILES}
    assert "demo.yaml" in names
    assert len(names) >= 5


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_passes_the_checker(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert check_flow(text, str(path)) == []


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_validates_against_the_published_schema(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    data, _, yaml_problems = load_yaml(text, str(path))
    assert yaml_problems == []
    assert validate(data, published_schema()) == []


def test_the_schema_rejects_what_the_checker_rejects() -> None:
    schema = published_schema()
    bad_type = {"flow": "x", "tenant": "acme", "steps": {"a": {"type": "teleport"}}}
    extra = {"flow": "x", "tenant": "acme", "steps": {"a": {"type": "hangup", "colour": 1}}}
    no_tenant = {"flow": "x", "steps": {"a": {"type": "hangup"}}}
    for document in (bad_type, extra, no_tenant):
        assert validate(document, schema) != []


def test_the_published_schema_is_up_to_date() -> None:
    published = (ROOT / "src" / "telportal" / "ivr" / "flow.schema.json").read_text("utf-8")
    assert published == schema_text(), (
        "regenerate: python -c 'import telportal.ivr.schema as s; s.write_schema()'"
    )
    assert json.loads(published)["$schema"].endswith("2020-12/schema")


def test_the_packaged_demo_flow_is_the_example() -> None:
    assert demo_flow_text() == (EXAMPLES / "demo.yaml").read_text(encoding="utf-8")
    flow = load_demo_flow()
    assert (flow.tenant, flow.spec.numbers, flow.start) == ("acme", ["4008001000"], "greeting")


@pytest.mark.parametrize(
    ("keys", "outcome"),
    [
        ("1", "queue sales"),
        ("2", "queue support"),
        ("0", "queue support"),
        ("", "queue support"),  # silence
        ("9", "hangup self_service"),
        ("5 1", "queue sales"),  # a wrong key, then the menu again
        ("5 6 7", "queue support"),  # wrong three times
    ],
)
def test_the_demo_routes_callers_as_the_design_says(keys: str, outcome: str) -> None:
    result = simulate(load_demo_flow(), keys, CALLER, MONDAY_10)
    assert result.outcome == outcome


def test_the_demo_self_service_announcement_is_speech() -> None:
    result = simulate(load_demo_flow(), "9", CALLER, MONDAY_10)
    speech = result.actions[-2]
    assert "Monday to Friday" in repr(speech)


def test_example_fixtures_drive_the_examples() -> None:
    bank = load_flow_file(EXAMPLES / "bank_balance.yaml")
    fixture = HttpFixture.from_text((EXAMPLES / "bank_balance.fixture.json").read_text("utf-8"))
    ok = simulate(bank, "6222020000000007# #", CALLER, MONDAY_10, fixture)
    assert ok.outcome == "hangup completed"
    unknown = simulate(bank, "6222021234567894#", CALLER, MONDAY_10, fixture)
    assert [v.step for v in unknown.path][-3:] == ["lookup_failed", "unknown_card", "agent"]
    billing = load_flow_file(EXAMPLES / "billing_zh.yaml")
    fixture = HttpFixture.from_text((EXAMPLES / "billing_zh.fixture.json").read_text("utf-8"))
    result = simulate(billing, "13912345678# 1", CALLER, MONDAY_10, fixture)
    assert result.outcome == "queue billing"
    said = [v.outcome for v in result.path if v.type == "say"]
    assert said == ["一千二百三十四元五角", "二零二六年三月十五日"]
