"""Problems found in a flow file, reported the way compilers report them.

Every problem names the file, the 1-based line and column where the offending node
starts, and a message for the person who wrote the flow. There are no warnings: a flow
either has problems or it is clean, so `telportal flow check` has one clear verdict.
"""

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: error: {self.message}"


class FlowInvalid(ValueError):
    """A flow with problems was loaded; `problems` holds every one of them, sorted."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(sorted(problems))
        first = str(self.problems[0]) if self.problems else "invalid flow"
        more = len(self.problems) - 1
        super().__init__(first + (f" (and {more} more)" if more > 0 else ""))
