"""The step graph of a flow: missing steps, unreachable steps and loops with no way out.

Each step is a node; its edges are the steps it names (`next`, menu options, branch
cases...). A node *ends the call* if running it can finish the IVR part of the call by
itself: queue, transfer, hangup, and menus or gathers without `on_timeout` or
`on_invalid` (the caller is hung up on after the last try). A node that failed
validation is treated as if it might end the call, so one mistake is reported once.

- a name that is not a step is reported where it is written;
- a step that cannot be reached from the start step is reported at its name;
- a set of reachable steps that call each other (a strongly connected component with a
  cycle) from which no step that ends the call can be reached is a loop with no way out,
  reported once, at the first of its steps in the file. A caller there could only leave
  by hanging up; the interpreter's step limit would end it.
"""

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from telportal.ivr.spec import Targets
from telportal.ivr.yamlsource import Path


@dataclass(frozen=True, slots=True)
class StepNode:
    name: str
    targets: Targets  # paths relative to the step
    ends_call: bool
    known: bool = True  # False: the step failed validation


@dataclass(frozen=True, slots=True)
class GraphIssue:
    path: Path
    message: str
    at_key: bool = False


def graph_issues(nodes: Mapping[str, StepNode], start: str, start_path: Path) -> list[GraphIssue]:
    issues: list[GraphIssue] = []
    names = list(nodes)
    for node in nodes.values():
        for path, target in node.targets:
            if target not in nodes:
                where = ("steps", node.name, *path)
                issues.append(GraphIssue(where, f"no step named '{target}'{_hint(target, names)}"))
    if start not in nodes:
        issues.append(
            GraphIssue(start_path, f"the start step '{start}' does not exist{_hint(start, names)}")
        )
        return issues
    reachable = _reach({start}, lambda n: [t for _, t in nodes[n].targets if t in nodes])
    for name in names:
        if name not in reachable:
            issues.append(
                GraphIssue(("steps", name), f"step '{name}' is never reached from '{start}'", True)
            )
    issues.extend(_trapped_loops(nodes, reachable))
    return issues


def _hint(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _reach(seeds: set[str], successors: Callable[[str], Iterable[str]]) -> set[str]:
    seen = set(seeds)
    todo = list(seeds)
    while todo:
        for following in successors(todo.pop()):
            if following not in seen:
                seen.add(following)
                todo.append(following)
    return seen


def _trapped_loops(nodes: Mapping[str, StepNode], reachable: set[str]) -> list[GraphIssue]:
    predecessors: dict[str, list[str]] = {name: [] for name in nodes}
    for node in nodes.values():
        for _, target in node.targets:
            if target in predecessors:
                predecessors[target].append(node.name)
    exits = {
        n.name
        for n in nodes.values()
        if n.ends_call or not n.known or any(t not in nodes for _, t in n.targets)
    }
    can_leave = _reach(exits, lambda n: predecessors[n])
    trapped = [name for name in nodes if name in reachable and name not in can_leave]
    issues = []
    for component in _cycles(trapped, nodes):
        first = component[0]
        steps = ", ".join(f"'{name}'" for name in component)
        issues.append(
            GraphIssue(
                ("steps", first),
                f"loop with no way out: from {steps} no hangup, queue or transfer can be reached",
                True,
            )
        )
    return issues


def _cycles(trapped: list[str], nodes: Mapping[str, StepNode]) -> list[list[str]]:
    """Strongly connected components of the trapped steps that hold a cycle, in file order."""
    members = set(trapped)
    order = {name: i for i, name in enumerate(nodes)}

    def successors(name: str) -> list[str]:
        return [t for _, t in nodes[name].targets if t in members]

    predecessors: dict[str, list[str]] = {name: [] for name in trapped}
    for name in trapped:
        for target in successors(name):
            predecessors[target].append(name)
    components: list[list[str]] = []
    assigned: set[str] = set()
    for name in trapped:
        if name in assigned:
            continue
        forward = _reach({name}, successors)
        backward = _reach({name}, lambda n: predecessors[n])
        component = sorted(forward & backward, key=order.__getitem__)
        assigned.update(component)
        if len(component) > 1 or name in successors(name):
            components.append(component)
    return sorted(components, key=lambda c: order[c[0]])
