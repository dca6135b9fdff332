"""The demo tenant's flow, shipped inside the package for the server to load.

`demo_flow.yaml` beside this module is a copy of `examples/flows/demo.yaml` (a test keeps
them equal): examples are not installed with the package, the copy is.
"""

from importlib import resources

from telportal.ivr.checker import load_flow
from telportal.ivr.flow import Flow

DEMO_FLOW_FILE = "demo_flow.yaml"


def demo_flow_text() -> str:
    return resources.files("telportal.ivr").joinpath(DEMO_FLOW_FILE).read_text(encoding="utf-8")


def load_demo_flow() -> Flow:
    return load_flow(demo_flow_text(), DEMO_FLOW_FILE)
