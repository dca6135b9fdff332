"""The published JSON Schema of flow files, generated from the models in `spec`.

`flow.schema.json` beside this module is the generated schema, kept in the repository so
editors and the graphical editor can use it without running Python. A test fails when
it is stale; regenerate it with:

    .venv/bin/python -c "import telportal.ivr.schema as s; s.write_schema()"
"""

import json
from importlib import resources
from typing import Any

from telportal.ivr.spec import FlowSpec

SCHEMA_ID = "https://telportal.org/schemas/ivr-flow.schema.json"
SCHEMA_FILE = "flow.schema.json"


def flow_json_schema() -> dict[str, Any]:
    schema = FlowSpec.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def schema_text() -> str:
    return json.dumps(flow_json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def published_schema() -> dict[str, Any]:
    """The schema file shipped with the package."""
    text = resources.files("telportal.ivr").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def write_schema() -> None:
    """Write the generated schema over the published file (in a source checkout)."""
    target = resources.files("telportal.ivr").joinpath(SCHEMA_FILE)
    with resources.as_file(target) as path:
        path.write_text(schema_text(), encoding="utf-8")
