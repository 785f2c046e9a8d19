"""Domain errors carry a message meant for the user; pages show it, the API returns it as 4xx JSON."""


class DomainError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    status = 422


class NotFound(DomainError):
    status = 404


class Forbidden(DomainError):
    status = 403


class Conflict(DomainError):
    status = 409


class TooManyAttempts(DomainError):
    status = 429


class SignedOut(DomainError):
    """The login this page acts with has ended (logged out, or the account deactivated)."""
    status = 401

    def __init__(self, message: str = 'You are logged out: log in again.') -> None:
        super().__init__(message)
