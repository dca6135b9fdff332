"""The ACD's errors: a wrong step is refused with a message naming the object and its state."""

from telportal.errors import Conflict, NotFound


class IllegalTransition(Conflict):
    """An event that the object's present state does not allow (the state tables say which)."""

    code = "illegal_transition"

    def __init__(self, subject: str, state: str, event: str) -> None:
        super().__init__(f"{subject} is {state.replace('_', ' ')}: cannot {event}")
        self.subject = subject
        self.state = state
        self.event = event


class UnknownObject(NotFound):
    def __init__(self, entity: str, object_id: str) -> None:
        super().__init__(entity)
        self.object_id = object_id
        # The id is worth having in the message: the caller passed it and may have mistyped it.
        self.message = f"{entity} {object_id!r} not found"
        self.args = (self.message,)


class UnknownAgent(UnknownObject):
    def __init__(self, agent_id: str) -> None:
        super().__init__("agent", agent_id)


class UnknownContact(UnknownObject):
    def __init__(self, contact_id: str) -> None:
        super().__init__("contact", contact_id)


class UnknownQueue(UnknownObject):
    def __init__(self, queue_id: str) -> None:
        super().__init__("queue", queue_id)
