"""Domain errors carry a message meant for the user; pages show it, the API returns it as 4xx JSON."""


class DomainError(Exception):
    status = 400  # the API's HTTP status for it: a subclass names its own, `class NotFound(DomainError, status=404)`

    def __init_subclass__(cls, status: int | None = None, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError, status=422):
    """What was sent cannot be used as it is; the message says what to change."""


class NotFound(DomainError, status=404):
    """No such object, or none the acting user may know of (a private board is "not found" to outsiders)."""


class Forbidden(DomainError, status=403):
    """The acting user may see the object but not do this to it."""


class Conflict(DomainError, status=409):
    """The object changed meanwhile or the name is taken: reload, or pick another name."""


class TooManyAttempts(DomainError, status=429):
    """Too many tries in a short time (logins, API requests): wait, then try again."""


class SignedOut(DomainError, status=401):
    """The login this page acts with has ended (logged out, or the account deactivated)."""

    def __init__(self, message: str = 'You are logged out: log in again.') -> None:
        super().__init__(message)
