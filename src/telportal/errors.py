"""Domain errors. Each carries a stable machine code and a message for people.

The API turns them into JSON error bodies; the CLI prints the message.
"""


class DomainError(Exception):
    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """Also the answer for another tenant's objects, so their existence does not leak."""

    code = "not_found"

    def __init__(self, entity: str) -> None:
        super().__init__(f"{entity.replace('_', ' ')} not found")
        self.entity = entity


class Invalid(DomainError):
    code = "invalid"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class Conflict(DomainError):
    code = "conflict"


class TooLarge(DomainError):
    code = "too_large"


class Forbidden(DomainError):
    code = "forbidden"


class Unauthorized(DomainError):
    code = "unauthorized"


class TooManyAttempts(DomainError):
    code = "too_many_attempts"

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many failed attempts; try again later")
        self.retry_after = retry_after
