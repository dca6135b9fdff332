"""The cases core's errors: a refused step names the case, its state and the event."""

from telportal.errors import Conflict


class IllegalTransition(Conflict):
    """An event the case's present state does not allow (the table in `lifecycle` says which)."""

    code = "illegal_transition"

    def __init__(self, case_id: str, state: str, event: str, why: str = "") -> None:
        message = f"case {case_id} is {state.replace('_', ' ')}: cannot {event.replace('_', ' ')}"
        super().__init__(f"{message} ({why})" if why else message)
        self.case_id = case_id
        self.state = state
        self.event = event
